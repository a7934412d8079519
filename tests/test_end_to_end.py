"""The whole experiment on real MNIST images at a tiny scale: every step runs, the tables come out,
and a rerun with the same run id does no work."""

import json
from pathlib import Path

import pytest

from amc_dist import cli

DEMO = str(Path(__file__).parent.parent / "configs" / "demo.yaml")
CHEAP = {"ead": "{binary_search_steps: 1, max_iterations: 3}", "pgd": "{eps: 0.3, nb_iter: 3, eps_iter: 0.1}",
         "vat": "{xi: 1.0, num_iterations: 1, eps: 5.0}", "fgsm": "{eps: 0.1}"}  # fmt: skip
TINY = [
    "data.train_subset=300", "training.epochs=1", "training.eval_size=40", "cascade.epochs_per_stage=1",
    "experiment.baseline_epochs=1", "experiment.eval_size=40", "proxy.n_samples=300",
    "proxy.training.epochs=1",
    "model.proxy_kwargs={in_channels: 1, image_size: 28, width: 4, hidden: 16}",
    "attacks.strong_pgd={eps: 0.3, eps_iter: 0.1, nb_iter: 4, rand_init: true}",
    "attacks.apgd_targets=2", "attacks.square_queries=20",
    *(f"attacks.{setting}.{a}={p}" for setting in ("whitebox", "blackbox") for a, p in CHEAP.items()),
]  # fmt: skip


@pytest.mark.slow
def test_tiny_experiment_runs_every_step_and_writes_the_tables(tmp_path, capsys):
    args = ["run", "--config", DEMO, "--run-id", "e2e", "--set", f"run.output={tmp_path}"]
    for override in TINY:
        args += ["--set", override]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    run = tmp_path / "e2e"
    results = json.loads((run / "results.json").read_text())
    assert set(results["whitebox"]) >= {"undefended", "amc_target", "amc_proxy", "amc_no_transfer", "amc_loo"}
    assert {f"at_{a}" for a in ("fgsm", "vat", "ead", "pgd")} <= set(results["whitebox"])
    assert set(results["blackbox"]) == {"undefended", "amc_proxy", *(f"at_proxy_{a}" for a in CHEAP)}
    assert set(results["squeezing"]) == {"amc_target", "amc_target+fs", "amc_target+fs_bpda"}
    assert set(results["leave_one_out"]) == {"undefended", "amc_loo", "amc_loo+fs", "amc_loo+fs_bpda"}
    squeezed = {f"{m}{s}" for m in ("undefended", "amc_target") for s in ("+fs", "+fs_bpda")}
    assert set(results["worst_case"]) == set(results["whitebox"]) | squeezed  # every model, beside Table 3
    for row in results["worst_case"].values():
        assert set(row) == {"pgd_strong", "apgd_ce", "apgd_t", "square", "blackbox_only", "worst_case"}
        assert row["worst_case"] == max(row.values())
    assert "worst case of strong PGD and APGD-CE, APGD-T, Square" in out
    # smell tests: the full-report rows bare and through BPDA, and every row with a P'', which crafts the
    # transfer check; amc_target has no P'' in a run, so its transfer check is skipped
    smell = results["smell_tests"]
    assert set(smell) == {"undefended", "undefended+fs_bpda", "amc_target", "amc_target+fs_bpda"} | set(
        results["blackbox"]
    )
    for row in ("undefended", "undefended+fs_bpda", "amc_proxy", "at_proxy_pgd"):
        assert smell[row]["transfer_not_above_whitebox"]["passed"] in (True, False)
    assert smell["amc_target"]["transfer_not_above_whitebox"]["passed"] is None
    for row in results["whitebox"].values():
        assert set(row) == {"fgsm", "vat", "ead", "pgd"} and all(0 <= e <= 1 for e in row.values())
    assert "Table 3" in out and "(paper 85.4)" in out  # the paper's number beside ours
    assert (run / "results.md").read_text().startswith("#")
    assert {p.name for p in (run / "figures").iterdir()} >= {"whitebox.png", "blackbox.png"}
    kinds = {json.loads(line)["kind"] for line in (run / "metrics.jsonl").read_text().splitlines()}
    assert kinds >= {"stage_started", "progress", "eval", "stage_finished", "run_finished"}
    assert not list(run.glob("partial/*"))  # finished steps leave no epoch state behind

    steps = sorted(p.name for p in (run / "steps").iterdir())
    before = (run / "metrics.jsonl").read_text().count('"stage_started"')
    assert cli.main(args) == 0  # same run id: every step is skipped
    assert (run / "metrics.jsonl").read_text().count('"stage_started"') == before
    assert sorted(p.name for p in (run / "steps").iterdir()) == steps
