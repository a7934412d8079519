"""`ray job submit --working-dir . -- python -m amc_dist.launch ...` against a `ray start --head` with
token auth on loopback, as README.md's "Running on a Ray cluster" shows: the tiny experiment runs as a
job on that cluster (not on an embedded Ray of its own), with the venv's python, and ends SUCCEEDED
with its results written. Head and job live in their own PID + network namespace."""

import json
import os
import sys
import uuid
from pathlib import Path

import pytest
from namespaced_ray_job import AS_INIT, UNSHARE, namespaces_work
from netaudit import run_bounded

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(600)
def test_tiny_launch_submitted_as_a_job_to_a_token_auth_head_succeeds(data_root, short_tmp):
    if not namespaces_work():
        pytest.skip("needs `unshare -n -p` (root, or user namespaces) to keep the head apart")
    work = short_tmp
    runs = work / "runs"
    submission = f"amc-{uuid.uuid4().hex[:8]}"
    launch = f"python -m amc_dist.launch --config tests/configs/tiny.yaml --storage {runs} --run-id job"
    # one shell command line: `ray job submit` quotes each argument after `--` on its own
    entrypoint = ["sh", "-c", f'echo "python: $(command -v python)" && exec {launch}']
    env = {**os.environ, "AMC_DATA": data_root, "PYTHONPATH": str(REPO)}
    finished = run_bounded(
        [*UNSHARE, *AS_INIT, sys.executable, str(REPO / "tests" / "namespaced_ray_job.py"),
         str(work), str(REPO), submission, "--", *entrypoint],
        env, str(REPO), 480,
    )  # fmt: skip
    assert finished.returncode == 0, finished.output[-6000:]
    report = finished.report()
    print(f"job {report} in {finished.seconds:.1f} s")
    assert report["status"] == "SUCCEEDED" and report["submit_rc"] == 0, finished.output[-6000:]
    assert Path(report["python"]).parent == Path(sys.executable).parent  # the venv's, through PATH
    assert "on Ray (cluster)" in finished.output  # joined the head, did not start a Ray of its own
    results = json.loads((runs / "job" / "results.json").read_text())
    assert results["clean"] and results["whitebox"] and results["blackbox"]
