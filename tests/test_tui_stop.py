"""amc-tui's stop action ends a real job: the tiny launch submitted to a token-auth `ray start --head`
of its own (own PID + network namespace, as in test_job_submit.py), followed through that cluster's
metrics hub and stopped from the dashboard through Ray's job API after the confirmation."""

import os
import sys
import uuid
from pathlib import Path

import pytest
from namespaced_ray_job import AS_INIT, UNSHARE, namespaces_work
from netaudit import run_bounded

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_stop_action_ends_a_submitted_launch(data_root, short_tmp):
    if not namespaces_work():
        pytest.skip("needs `unshare -n -p` (root, or user namespaces) to keep the head apart")
    work = short_tmp
    submission = f"amc-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "AMC_DATA": data_root, "PYTHONPATH": f"{REPO / 'tui'}:{REPO}"}
    script = str(REPO / "tests" / "namespaced_tui_stop.py")
    finished = run_bounded([*UNSHARE, *AS_INIT, sys.executable, script, str(work), str(REPO), submission],
                           env, str(REPO), 480)  # fmt: skip
    assert finished.returncode == 0, finished.output[-6000:]
    # quitting while a poll was in flight once let Ray start a local cluster of its own in the dashboard
    assert "Started a local Ray instance" not in finished.output
    report = finished.report()
    print(f"stop {report} in {finished.seconds:.1f} s")
    assert len(report["listed"]) == 1 and "RUNNING  (this run)" in report["listed"][0]
    assert report["stopped_job"] == submission and report["status"] == "STOPPED"
    assert report["summary"].startswith("stopme stopped") and f"job {submission}" in report["summary"]
    assert report["steps_done"] < 19  # it ended the run part-way
    assert not (work / "runs" / "stopme" / "results.json").exists()
