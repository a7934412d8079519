"""Stop a real job from amc-tui, inside a fresh PID + network namespace (run it the way
namespaced_ray_job.py is run): a token-auth `ray start --head` of its own, the tiny launch submitted as
a job, and the dashboard (a headless pilot) following the run through that cluster's metrics hub,
pressing `s`, seeing the job named as this run's, confirming with `y`. Prints one JSON line: what the
confirmation listed, what the dashboard then showed and the job's final status from the job API."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from namespaced_ray_job import Head, ray_head
from tui_pilot import SIZE, screen_text, wait_for


async def stop_from_the_dashboard(head: Head, run_dir: str, submission_id: str) -> dict:
    from amc_tui.app import Dashboard
    from amc_tui.hub_source import HubSource
    from amc_tui.jobs import JobsClient, find_token

    app = Dashboard(HubSource(head.gcs, timeout=10), interval=0.5, max_backoff=2.0)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: run_dir in app.models and app.models[run_dir].steps_done() >= 1, 240,
                       "the submitted run on the hub, with a step done")  # fmt: skip
        model = app.models[run_dir]
        app.open_run(run_dir)
        await pilot.pause(0.5)
        await pilot.press("s")
        await wait_for(
            pilot, lambda: "(this run)" in screen_text(app), 60, "the run's job in the stop dialog"
        )
        listed = screen_text(app)
        await pilot.press("y")
        await wait_for(pilot, lambda: model.stopped_job is not None, 90, "the job stopped")
        await pilot.pause(1.0)
        shown = screen_text(app)
        status = JobsClient(head.dashboard, find_token()).status(submission_id)
    return {
        "listed": [line.strip() for line in listed.splitlines() if submission_id in line],
        "stopped_job": model.stopped_job,
        "summary": next((line.strip() for line in shown.splitlines() if "stopped from here" in line), None),
        "steps_done": model.steps_done(),
        "status": status,
    }


def main(work: Path, repo: str, submission_id: str) -> int:
    timings: dict[str, float] = {}
    run_dir = str(work / "runs" / "stopme")
    with ray_head(work, timings) as head:
        os.environ.update(head.env)  # the dashboard joins this cluster with its token
        launch = "python -m amc_dist.launch --config tests/configs/tiny.yaml --run-id stopme --storage"
        subprocess.run(
            [head.ray, "job", "submit", "--no-wait", "--address", head.dashboard, "--working-dir", repo,
             "--submission-id", submission_id, "--", *launch.split(), str(work / "runs")],
            env=head.env, check=True,
        )  # fmt: skip
        started = time.monotonic()
        report = asyncio.run(stop_from_the_dashboard(head, run_dir, submission_id))
        timings["follow_and_stop_s"] = time.monotonic() - started
    print(json.dumps({**report, "timings": timings}))
    return 0


if __name__ == "__main__":
    work_dir, repo_dir, job_id = sys.argv[1:]
    sys.exit(main(Path(work_dir), repo_dir, job_id))
