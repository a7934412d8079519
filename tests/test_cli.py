"""`amc train` end to end on real MNIST images (a small subset), and its failure modes."""

import json
from pathlib import Path

import pytest
import torch

from amc_dist import cli
from amc_dist.checkpoint import load_checkpoint
from amc_dist.config import load_config
from amc_dist.models import build_model_for

DEMO = str(Path(__file__).parent.parent / "configs" / "demo.yaml")


def train_args(tmp_path, *extra):
    return [
        "train", "--config", DEMO, "--run-id", "t", "--set", f"run.output={tmp_path}",
        "--set", "data.train_subset=2000", "--set", "training.epochs=2", "--set", "training.eval_size=200",
        "--set", "training.learning_rate=0.003",
        *extra,
    ]  # fmt: skip


def test_train_writes_checkpoint_metrics_and_reports_error(tmp_path, capsys):
    assert cli.main(train_args(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "mnist: 2000 training images, validation 2680, attack 1870, held-out test 4370" in out
    error = float(out.split("clean test error: ")[1].split("%")[0])
    payload = load_checkpoint(str(tmp_path / "t" / "target.pt"))
    assert payload["metadata"]["test_error"] == pytest.approx(error / 100, abs=5e-5)
    assert error < 40  # two epochs on 2000 images: far better than chance (90%)
    assert payload["config"]["data"]["train_subset"] == 2000
    events = [json.loads(line) for line in (tmp_path / "t" / "metrics.jsonl").read_text().splitlines()]
    assert {e["run_id"] for e in events} == {"t"}
    assert [e["kind"] for e in events if e["kind"] not in ("progress", "heartbeat")] == [
        "stage_started",
        "eval",
        "eval",
        "stage_finished",
    ]
    assert all(e["setting"] == "clean" and e["n"] == 200 for e in events if e["kind"] == "eval")


def test_interrupt_leaves_no_checkpoint(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("amc_dist.training.target.fit", interrupted)
    assert cli.main(train_args(tmp_path)) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not list((tmp_path / "t").glob("target.pt*"))


def test_config_errors_exit_2_with_the_key(tmp_path, capsys):
    assert cli.main(train_args(tmp_path, "--set", "training.alpha=7")) == 2
    err = capsys.readouterr().err
    assert "training.alpha" in err and "demo.yaml" in err
    assert not (tmp_path / "t").exists()


CHEAP_EVAL = [
    "--set", "experiment.eval_size=30",
    "--set", "attacks.whitebox.ead={binary_search_steps: 1, max_iterations: 3}",
    "--set", "attacks.whitebox.pgd={eps: 0.3, nb_iter: 3, eps_iter: 0.1}",
    "--set", "attacks.whitebox.vat={xi: 1.0, num_iterations: 1, eps: 5.0}",
    "--set", "attacks.strong_pgd={eps: 0.3, eps_iter: 0.1, nb_iter: 4, rand_init: true}",
]  # fmt: skip


def test_evaluate_reports_on_our_checkpoint_and_on_a_users_state_dict(tmp_path, capsys):
    assert cli.main(train_args(tmp_path)) == 0
    ours = tmp_path / "t" / "target.pt"
    assert cli.main(["evaluate", "--checkpoint", str(ours), *CHEAP_EVAL]) == 0
    report = json.loads((tmp_path / "t" / "target-evaluation" / "results.json").read_text())
    assert set(report["whitebox"]["target"]) == {"fgsm", "vat", "ead", "pgd"}
    assert set(report["squeezing"]) == {"target", "target+fs", "target+fs_bpda"}
    assert set(report["worst_case"]) == set(report["squeezing"])
    suite = {"apgd_ce", "apgd_t", "square", "blackbox_only"}
    assert set(report["worst_case"]["target"]) == {"pgd_strong", *suite, "worst_case"}
    assert report["smell_tests"]["target"]["iterative_beats_one_step"]["passed"] in (True, False)
    assert "Table 3" in capsys.readouterr().out

    plain = tmp_path / "weights.pt"
    torch.save(load_checkpoint(str(ours))["state_dict"], plain)
    assert cli.main(["evaluate", "--checkpoint", str(plain), *CHEAP_EVAL]) == 2
    assert "plain state dict: give --config" in capsys.readouterr().err
    out = tmp_path / "mine"
    args = ["evaluate", "--checkpoint", str(plain), "--config", DEMO, "--name", "mine", "--out", str(out)]
    assert cli.main([*args, *CHEAP_EVAL]) == 0
    mine = json.loads((out / "results.json").read_text())
    assert mine["clean"]["mine"] == pytest.approx(report["clean"]["target"])
    # without a proxy the smell tests' transfer check is skipped: it needs a black-box proxy
    assert report["smell_tests"]["target"]["transfer_not_above_whitebox"]["passed"] is None
    assert set(report["smell_tests"]) == {"target", "target+fs_bpda"}


def test_evaluate_with_a_proxy_runs_the_transfer_check_and_black_box(tmp_path):
    assert cli.main(train_args(tmp_path)) == 0
    config = load_config(DEMO)
    torch.manual_seed(0)
    proxy = build_model_for(config.model.proxy, (1, 28, 28), 10, **config.model.proxy_kwargs)
    torch.save(proxy.state_dict(), tmp_path / "proxy.pt")
    args = [
        "evaluate",
        "--checkpoint",
        str(tmp_path / "t" / "target.pt"),
        "--proxy",
        str(tmp_path / "proxy.pt"),
    ]
    assert (
        cli.main([*args, "--out", str(tmp_path / "e"), *CHEAP_EVAL, "--set", "experiment.eval_size=20"]) == 0
    )
    report = json.loads((tmp_path / "e" / "results.json").read_text())
    assert set(report["blackbox"]["target"]) == {"fgsm", "vat", "ead", "pgd"}
    for row in ("target", "target+fs_bpda"):
        transfer = report["smell_tests"][row]["transfer_not_above_whitebox"]
        assert transfer["passed"] in (True, False) and set(transfer["transfer"]) == {"fgsm", "pgd"}


def test_figure_attacks_writes_a_png_from_a_checkpoint(tmp_path):
    assert cli.main(train_args(tmp_path)) == 0
    out = tmp_path / "figure1.png"
    args = ["figure", "attacks", "--out", str(out), "--checkpoint", str(tmp_path / "t" / "target.pt")]
    assert cli.main([*args, "--images", "2"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_attacks_forwards_its_options(monkeypatch):
    seen = []
    monkeypatch.setattr("amc_dist.bench.attacks.main", lambda argv: seen.append(argv) or 0)
    assert cli.main(["bench", "attacks", "--quick", "--out", "b.json"]) == 0
    assert seen == [["--quick", "--out", "b.json"]]
