"""The experiment's graph and runner: which steps exist, parameter transfer, resume after a crash."""

import json
from pathlib import Path

import pytest
import torch

from amc_dist.blackbox.oracle import QueryBudgetExceeded
from amc_dist.config import load_config
from amc_dist.experiment import steps
from amc_dist.experiment.plan import build_graph
from amc_dist.experiment.rows import model_rows
from amc_dist.experiment.runner import run_experiment
from amc_dist.models import build_model_for

DEMO = Path(__file__).parent.parent / "configs" / "demo.yaml"
TINY = Path(__file__).parent / "configs" / "tiny.yaml"


def config(tmp_path, *overrides):
    return load_config(DEMO, [f"run.output={tmp_path}", "data.train_subset=200", *overrides])


def test_the_graph_holds_every_model_of_the_papers_tables(tmp_path):
    graph = build_graph(config(tmp_path))
    names = set(graph.steps)
    for attack in ("fgsm", "vat", "ead", "pgd"):
        assert {f"at.{attack}", f"at_proxy.{attack}"} <= names
    assert {f"amc_target.{k}" for k in range(1, 5)} | {f"amc_proxy.{k}" for k in range(1, 5)} <= names
    assert {"amc_no_transfer", "amc_loo.3", "report"} <= names and "amc_loo.4" not in names
    assert graph.steps["amc_target.3"].needs == ("amc_target.2",)
    assert graph.steps["amc_proxy.3"].needs == ("amc_proxy.2", "proxy.3")
    assert graph.steps["proxy.3"].needs == ("amc_proxy.2", "proxy.2")  # P' re-fitted to the last stage
    assert graph.steps["at_proxy.vat"].needs == ("target", "proxy.1")
    assert graph.steps["blackbox.amc_proxy"].needs == ("amc_proxy.4", "p2.amc_proxy")
    # a row with an adaptive attacker's P'' is smell-tested with it (the transfer check): eval needs it too
    assert graph.steps["eval.undefended"].needs == ("target", "p2.undefended")
    assert graph.steps["eval.amc_proxy"].needs == ("amc_proxy.4", "p2.amc_proxy")
    assert graph.steps["eval.at_proxy_ead"].needs == ("at_proxy.ead", "p2.at_proxy_ead")
    assert graph.steps["eval.amc_target"].needs == ("amc_target.4",)  # no P'' for this row
    assert graph.steps["eval.undefended"].run.keywords["proxy"] == "p2.undefended"
    assert set(graph.steps["report"].needs) == {f"eval.{r}" for r in model_rows(config(tmp_path))} | {
        f"blackbox.{r}"
        for r in ("undefended", "amc_proxy", *(f"at_proxy_{a}" for a in ("fgsm", "vat", "ead", "pgd")))
    }


def test_variants_can_be_chosen(tmp_path):
    graph = build_graph(
        config(tmp_path, "experiment.variants=[target_hardened]", "experiment.baselines=false")
    )
    assert [s.name for s in graph if not s.name.startswith(("eval", "p2", "blackbox", "report"))] == [
        "target", "amc_target.1", "amc_target.2", "amc_target.3", "amc_target.4",
    ]  # fmt: skip


@pytest.fixture
def fake_training(monkeypatch):
    """Replace training by a recorder: each stage adds its index to every weight of its start model."""
    calls = []

    def train_target(cfg, task, on_event, **kwargs):
        torch.manual_seed(0)
        return build_model_for("lenet", task.shape, task.num_classes)

    def train_stage(model, stage, *args, name, **kwargs):
        calls.append((name, next(model.parameters()).detach().flatten()[0].item()))
        with torch.no_grad():
            for p in model.parameters():
                p.add_(stage.index)
        return model

    monkeypatch.setattr(steps, "train_target", train_target)
    monkeypatch.setattr(steps, "train_stage", train_stage)
    return calls


@pytest.mark.parametrize("transfer", [True, False])
def test_parameter_transfer_present_or_absent(tmp_path, fake_training, transfer):
    cfg = config(tmp_path, f"cascade.parameter_transfer={str(transfer).lower()}")
    run_experiment(cfg, str(tmp_path / "r"), only=[f"amc_target.{k}" for k in range(1, 5)])
    starts = dict(fake_training)
    w0 = starts["amc_target.1"]
    # with transfer stage k starts from stage k-1 (M0 + 1 + ... + (k-1)); without, always from M0
    expected = [w0 + sum(range(1, k)) if transfer else w0 for k in range(1, 5)]
    assert [starts[f"amc_target.{k}"] for k in range(1, 5)] == pytest.approx(expected)


def test_rerun_skips_completed_steps_and_resumes_after_a_crash(tmp_path, fake_training, monkeypatch):
    cfg, run_dir = config(tmp_path), str(tmp_path / "r")

    original = steps.train_stage

    def crash_at_stage_3(model, stage, *args, name, **kwargs):
        if name == "amc_target.3":
            raise RuntimeError("worker lost")
        return original(model, stage, *args, name=name, **kwargs)

    monkeypatch.setattr(steps, "train_stage", crash_at_stage_3)
    with pytest.raises(RuntimeError, match="worker lost"):
        run_experiment(cfg, run_dir, only=["amc_target.4"])
    assert [name for name, _ in fake_training] == ["amc_target.1", "amc_target.2"]
    assert sorted(p.name for p in (tmp_path / "r" / "steps").iterdir()) == [
        "amc_target.1.done", "amc_target.2.done", "target.done",
    ]  # fmt: skip
    monkeypatch.setattr(steps, "train_stage", original)
    fake_training.clear()
    run_experiment(cfg, run_dir, only=["amc_target.4"])
    assert [name for name, _ in fake_training] == ["amc_target.3", "amc_target.4"]
    fake_training.clear()
    run_experiment(cfg, run_dir, only=["amc_target.4"])
    assert fake_training == []


def test_a_rerun_with_another_config_is_refused(tmp_path, fake_training):
    run_dir = str(tmp_path / "r")
    run_experiment(config(tmp_path), run_dir, only=["target"])
    with pytest.raises(ValueError, match="holds a different config"):
        run_experiment(config(tmp_path, "seed=1"), run_dir, only=["target"])
    run_experiment(config(tmp_path, "ray.num_workers=2"), run_dir, only=["target"])  # execution only: allowed


def test_the_papers_reverse_order(tmp_path):
    graph = build_graph(config(tmp_path, "cascade.order=[PGM, EAP, VAP, FGSM]", "experiment.leave_out=PGM"))
    assert graph.steps["amc_target.1"].description.endswith("stage 1: pgd")
    assert graph.steps["amc_target.4"].description.endswith("stage 4: pgd+ead+vat+fgsm")
    assert graph.steps["amc_loo.3"].description.endswith("stage 3: ead+vat+fgsm")


def test_the_query_budget_is_the_attackers_whole_campaign_and_survives_a_resume(tmp_path, fake_training):
    """P' (128 queries) fits a budget of 200 and so does each P'', an attacker of its own; the re-fit
    of P' to stage 1 would take the campaign to 256, also after a resume. The defender's agreement check
    on the test split spends nothing."""
    cfg = load_config(TINY, [f"run.output={tmp_path}", "proxy.query_budget=200"])
    run_dir = str(tmp_path / "r")
    events = []
    run_experiment(cfg, run_dir, only=["proxy.1", "p2.undefended"], on_event=events.append)
    measured = {e["stage"]: e for e in events if e.get("metric") == "agreement"}
    assert set(measured) == {"proxy.1", "p2.undefended"} and measured["proxy.1"]["n"] > 200
    oracle = Path(run_dir) / "oracle"
    assert json.loads((oracle / "proxy.json").read_text()) == {"campaign": "proxy", "queries": 128}
    assert json.loads((oracle / "p2.undefended.json").read_text())["queries"] == 128
    with pytest.raises(
        QueryBudgetExceeded, match="campaign 'proxy' exhausted: 128 of 200 used, 128 more asked"
    ):
        run_experiment(cfg, run_dir, only=["proxy.2"])  # a resume: a new context reads the stored count
    assert json.loads((oracle / "proxy.json").read_text())["queries"] == 128
    assert (Path(run_dir) / "steps" / "amc_proxy.1.done").exists()


def test_adversarial_trainings_use_the_adversarial_subset_and_m0_all_its_images():
    from types import SimpleNamespace

    from amc_dist.task import Split

    train = Split(torch.zeros(10, 1, 28, 28), torch.arange(10))
    for subset, kept in ((None, 10), (4, 4), (50, 10)):
        cfg = load_config(DEMO, [f"experiment.adversarial_subset={'null' if subset is None else subset}"])
        ctx = SimpleNamespace(config=cfg, task=SimpleNamespace(train=train))
        images = steps.adversarial_images(ctx)
        assert len(images) == kept and torch.equal(images.y, train.y[:kept])  # the first N, in order
