"""`python -m amc_dist.launch` on the test session's Ray: the whole tiny experiment, every section of
results.json, steps running at once, events through the metrics hub into metrics.jsonl, and a rerun that
resumes (nothing left to do)."""

import itertools
import json
from pathlib import Path

import pytest

from amc_dist import launch

TINY = str(Path(__file__).parent / "configs" / "tiny.yaml")
SECTIONS = {"clean", "whitebox", "blackbox", "squeezing", "leave_one_out", "strong_pgd", "smell_tests"}


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_tiny_launch_produces_every_result_and_resumes(tmp_path, ray_cluster):
    args = ["--config", TINY, "--storage", str(tmp_path / "runs"), "--run-id", "t1"]
    assert launch.main(args) == 0
    run_dir = tmp_path / "runs" / "t1"
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results) >= SECTIONS
    assert set(results["whitebox"]) >= {"undefended", "amc_target", "amc_proxy", "amc_no_transfer", "amc_loo"}
    events = _events(run_dir)
    assert all(e["schema"] == 1 and e["run_id"] == "t1" for e in events)
    assert len({e["id"] for e in events}) == len(events)  # the hub dropped nothing twice
    started = next(e for e in events if e["kind"] == "run_started")
    assert started["attempt"] == 1 and started["runner"] == "ray" and started["dataset"] == "mnist"
    names = {s["name"] for s in started["graph"]}
    intervals = {}
    for e in events:
        if e["kind"] == "step_started":
            intervals[e["stage"]] = [e["time"], None]
        elif e["kind"] == "step_finished":
            intervals[e["stage"]][1] = e["time"]
    assert set(intervals) == names  # every step, evaluations included, started and finished
    spans = sorted(intervals.values())
    assert any(b[0] < a[1] for a, b in itertools.pairwise(spans))  # some steps overlapped
    agreement = [e for e in events if e.get("metric") == "agreement"]
    assert agreement and all(0 <= e["value"] <= 1 and "error_rate" not in e for e in agreement)
    # the attacker's budget: P' and its re-fit are one campaign, each P'' its own; agreement spends none
    spent = {p.stem: json.loads(p.read_text())["queries"] for p in (run_dir / "oracle").iterdir()}
    assert spent == {"proxy": 2 * 128} | {f"p2.{r}": 128 for r in ("undefended", "amc_proxy")}
    assert events[-1]["kind"] == "run_finished" and events[-1]["status"] == "done"

    assert launch.main(args) == 0  # resume: every step is complete
    again = _events(run_dir)[len(events) :]
    assert next(e for e in again if e["kind"] == "run_started")["attempt"] == 2
    finished = [e for e in again if e["kind"] == "step_finished"]
    assert len(finished) == len(names) and all(e["skipped"] for e in finished)


@pytest.mark.timeout(120)
def test_gpus_asked_of_a_cluster_without_them_fail_at_once(tmp_path, ray_cluster, capsys):
    args = [
        "--config",
        TINY,
        "--storage",
        str(tmp_path),
        "--set",
        "ray.use_gpu=true",
        "--set",
        "ray.trainer=train",
    ]
    assert launch.main(args) == 2
    assert "has no GPUs" in capsys.readouterr().err
