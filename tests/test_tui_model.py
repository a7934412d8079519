"""amc-tui's run model: a recorded tiny run folds into the step graph, states, error figures and
cascade chains the screens show; bad input is counted and logged, never raised."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from amc_tui.connection import Connection
from amc_tui.jobs import Job, jobs_of_run
from amc_tui.results import parse_tables
from amc_tui.run_model import STALE_AFTER, RunModel

RECORDED = Path(__file__).parent / "data" / "tui_run"


def recorded_events() -> list[dict]:
    return [json.loads(line) for line in (RECORDED / "metrics.jsonl").read_text().splitlines()]


def folded(events) -> RunModel:
    model = RunModel("/runs/rec1")
    model.apply_all(events)
    return model


def test_a_recorded_run_folds_into_its_graph_states_and_errors():
    events = recorded_events()
    model = folded(events)
    assert (model.run_id, model.dataset, model.model, model.attempt) == ("rec1", "mnist", "lenet", 1)
    assert len(model.steps) == 19 and model.steps_done() == 19 and not model.bad
    assert model.status() == "done" and model.eta() is None
    assert model.elapsed() == pytest.approx(events[-1]["time"] - events[0]["time"])
    latest = model.latest("eval.amc_target")
    assert latest[("eval.amc_target", "whitebox", "fgsm")].value == 0.875
    assert latest[("eval.amc_target", "whitebox", "ead")].value == pytest.approx(0.8333, abs=1e-4)
    assert ("amc_target+fs", "strong_pgd", "strong_pgd") in latest  # table rows keep their own entry
    # the white-box headline is the last stage that reported white-box errors, over the paper's attacks
    mean, worst, stage = model.headline()
    wb = {a: model.latest(stage)[(stage, "whitebox", a)].value for a in ("fgsm", "ead", "pgd", "vat")}
    assert stage == "eval.amc_proxy" and worst == max(wb.values())
    assert mean == pytest.approx(sum(wb.values()) / 4)
    assert model.chain("eval.amc_proxy") == ["target", "amc_proxy.1", "amc_proxy.2"]
    assert model.chain("blackbox.amc_target") == []  # no such step
    assert set(model.evaluators("amc_proxy.2")) == {"eval.amc_proxy", "blackbox.amc_proxy"}
    agreement = [m for m in model.measures if m.metric == "agreement"]
    assert [m.stage for m in agreement] == ["proxy.1", "p2.undefended", "proxy.2", "p2.amc_proxy"]
    assert model.loss["target"] and all(isinstance(x, float) for x, _ in model.loss["target"])


def test_states_advance_event_by_event_and_progress_gives_an_eta():
    model = RunModel("/r")
    started = {"kind": "run_started", "time": 100.0, "run_id": "r", "graph": [
        {"name": "target", "needs": [], "kind": "train"},
        {"name": "eval.undefended", "needs": ["target"], "kind": "evaluate"}]}  # fmt: skip
    model.apply(started)
    assert [s.state for s in model.steps.values()] == ["pending", "pending"]
    model.apply({"kind": "step_started", "stage": "target", "time": 101.0})
    model.apply({"kind": "stage_started", "stage": "target", "total_steps": 10, "time": 101.0})
    model.apply({"kind": "progress", "stage": "target", "step": 1, "loss": 2.3, "time": 102.0})
    model.apply({"kind": "progress", "stage": "target", "step": 3, "loss": 2.1, "time": 103.0})
    step = model.steps["target"]
    assert step.state == "running" and step.fraction() == 0.3
    assert step.eta() == pytest.approx(3.5)  # 7 steps left at 2 steps/s
    assert model.status(now=104.0) == "running"
    assert model.status(now=103.0 + STALE_AFTER + 1) == "stale"
    model.apply({"kind": "step_finished", "stage": "target", "time": 104.0, "seconds": 3.0})
    assert step.state == "done" and step.eta() is None
    # the start of eval.undefended was lost (a cut line): the next heartbeat shows it running
    model.apply({"kind": "heartbeat", "running": ["eval.undefended", "no-such-step", 7], "time": 105.0})
    assert model.running_steps() == ["eval.undefended"]
    assert model.steps_done() == 1 and model.eta(now=104.0) == pytest.approx(4.0)


def test_a_failed_step_and_run_are_shown_as_failures():
    model = folded(recorded_events()[:40])
    model.apply({"kind": "step_failed", "stage": "amc_target.2", "message": "RuntimeError: boom",
                 "stopped": ["eval.amc_target"], "time": 2e9})  # fmt: skip
    model.apply(
        {"kind": "run_finished", "status": "failed", "failed": {"amc_target.2": "RuntimeError: boom"}}
    )
    assert model.steps["amc_target.2"].state == "failed"
    assert model.steps["eval.amc_target"].state == "stopped"
    assert model.status() == "failed"
    errors = [line.text for line in model.log if line.level == "error"]
    assert errors == [
        "amc_target.2 FAILED: RuntimeError: boom",
        "run finished: failed (amc_target.2: RuntimeError: boom)",
    ]


def test_a_resumed_attempt_starts_steps_afresh_and_marks_completed_ones_skipped():
    events = recorded_events()
    model = folded(events)
    model.apply({**events[0], "id": "again-0", "attempt": 2})
    assert model.attempt == 2 and model.status(now=events[-1]["time"]) == "running"
    assert {s.state for s in model.steps.values()} == {"pending"}
    model.apply({"kind": "step_finished", "stage": "target", "skipped": True, "id": "again-1"})
    assert model.steps["target"].state == "skipped" and model.steps_done() == 1
    assert model.measures  # figures of the earlier attempt stay


BAD = [
    [1, 2],
    "a string",
    None,
    {"kind": "no_such_kind", "stage": "x"},
    {"kind": "eval", "stage": "target", "setting": "whitebox", "attack": "fgsm"},  # no error_rate
    {"kind": "eval", "stage": "target", "setting": "whitebox", "attack": "fgsm", "error_rate": "high"},
    {"kind": "eval", "stage": "target", "setting": "whitebox", "attack": "fgsm", "error_rate": math.nan},
    {"kind": "eval", "setting": "whitebox", "attack": "fgsm", "error_rate": 0.5},  # no stage
    {"kind": "progress", "stage": "target"},  # no step
    {"kind": "step_started"},  # no step name
    {"kind": "run_started", "graph": [{"needs": []}, "node"]},  # nodes without names
]


def test_bad_events_are_counted_and_logged_never_raised():
    model = RunModel("/r")
    model.apply_all(BAD)
    assert model.bad == {"not_object": 3, "unknown_kind": 1, "missing_fields": 8}
    assert not model.measures
    newer = {
        "schema": 2,
        "kind": "eval",
        "stage": "s",
        "setting": "whitebox",
        "attack": "pgd",
        "error_rate": 0.25,
    }
    model.apply(newer)
    model.apply({**newer, "error_rate": 0.5})
    assert model.bad["newer_schema"] == 2 and [m.value for m in model.measures] == [0.25, 0.5]
    warnings = [line.text for line in model.log if line.level == "warn"]
    assert sum("newer than this amc-tui knows" in w for w in warnings) == 1
    assert any("unknown event kind 'no_such_kind'" in w for w in warnings)


def test_events_delivered_twice_count_once():
    events = recorded_events()
    model = folded(events + events[10:30])
    assert len(model.measures) == sum(e["kind"] == "eval" for e in events)


def test_result_tables_are_read_back_from_results_md():
    tables = parse_tables((RECORDED / "results.md").read_text())
    titles = [t.title for t in tables]
    assert titles[0].startswith("Table 2") and any(t.startswith("Table 6") for t in titles)
    assert any(t.startswith("Beyond the paper") for t in titles)
    whitebox = next(t for t in tables if t.title.startswith("Table 3"))
    assert whitebox.header == ["model", "F (FGSM)", "E (EAP)", "P (PGM)", "V (VAP)", "mean"]
    assert whitebox.rows[0][0] == "undefended" and whitebox.rows[0][1].startswith("95.8")


def test_backoff_doubles_to_its_cap_and_resets_on_success():
    link = Connection(interval=1.0, max_delay=10.0)
    assert [link.failed("down") for _ in range(6)] == [1, 2, 4, 8, 10, 10]
    assert link.state == "unreachable" and link.failures == 6
    assert link.succeeded() == 1.0 and link.failures == 0 and link.state == "connected"


def test_a_run_is_matched_to_the_job_whose_entrypoint_names_it():
    launch = "python -m amc_dist.launch --config c.yaml --storage /data/runs --run-id {}"
    jobs = [
        Job("a", "RUNNING", launch.format("r1")),
        Job("b", "RUNNING", launch.format("r10")),
        Job("c", "SUCCEEDED", launch.format("r1")),
        Job("d", "PENDING", "amc run --config c.yaml --set run.output=/data/runs/r1x"),
        Job("e", "RUNNING", "python -m amc_dist.launch --config c.yaml --storage /data/runs"),
        Job("f", "PENDING", "amc run --config c.yaml --set run.output=/data/runs/r1/"),
    ]
    assert [j.submission_id for j in jobs_of_run(jobs, "r1", "/data/runs/r1")] == ["a", "f"]
    assert [j.submission_id for j in jobs_of_run(jobs, "r10", "/elsewhere/r10")] == ["b"]


def test_the_dashboard_imports_neither_torch_nor_ray_at_start():
    probe = "import sys, amc_tui.app; print(sorted(m for m in ('torch', 'ray') if m in sys.modules))"
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": f"{repo / 'tui'}:{repo}"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


def test_error_columns_come_from_the_runs_own_attacks_and_threat_models():
    """A cascade of [pgd, apgd] gets an apgd column (the paper's fixed four had none); a union row's
    threat models and union appear as their figures arrive."""
    model = RunModel("/r")
    model.apply({"kind": "run_started", "time": 1.0, "run_id": "r", "order": ["pgd", "apgd"], "graph": [
        {"name": "amc_target.2", "needs": [], "kind": "train"},
        {"name": "union_eval.msd", "needs": [], "kind": "evaluate"}]})  # fmt: skip

    def figure(stage, setting, attack, error, t):
        model.apply({"kind": "eval", "time": t, "stage": stage, "setting": setting, "attack": attack,
                     "error_rate": error, "n": 10, "id": f"e{t}"})  # fmt: skip

    figure("amc_target.2", "whitebox", "apgd", 0.5, 2.0)
    figure("amc_target.2", "whitebox", "pgd", 0.25, 3.0)
    figure("amc_target.2", "clean", "none", 0.125, 4.0)
    assert model.error_columns() == [("clean", "none"), ("whitebox", "pgd"), ("whitebox", "apgd")]
    figure("union_eval.msd", "union", "l2", 0.5, 5.0)
    figure("union_eval.msd", "union", "linf_apgd_ce", 0.4, 6.0)  # one attack's figure: charts, not columns
    figure("union_eval.msd", "union", "union", 0.75, 7.0)
    figure("union_eval.msd", "union", "linf", 0.375, 8.0)
    assert model.error_columns()[3:] == [("union", "linf"), ("union", "l2"), ("union", "union")]
    # a run that names its attacks (run_started's `attacks`) gets exactly those, in the config's order
    model.apply({"kind": "run_started", "time": 9.0, "run_id": "r", "order": ["pgd_linf", "pgd_l2"],
                 "attacks": ["pgd_l2", "pgd_linf"], "graph": []})  # fmt: skip
    figure("union.msd", "whitebox", "pgd_linf", 0.5, 10.0)
    figure("union.msd", "whitebox", "pgd_l2", 0.5, 11.0)
    assert model.error_columns()[:3] == [("clean", "none"), ("whitebox", "pgd_l2"), ("whitebox", "pgd_linf")]
