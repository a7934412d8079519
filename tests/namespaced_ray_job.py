"""Run one `ray job submit` against a Ray head of its own, inside a fresh PID + network namespace.

Run as `unshare -n -p -f --mount-proc --kill-child bash -c '"$@"; exit $?' init python
tests/namespaced_ray_job.py WORK REPO ID -- ENTRYPOINT...` (bash, the namespace's init, reaps orphans).
In there only loopback exists, so nothing can leave the machine, and `ray stop` sees only this head's
processes (the test session's own Ray is in another PID namespace). It starts the head the way
README.md's "Running on a Ray cluster" says (token auth with a random token, every port fixed and below
32768 outside Ray's worker range, loopback addresses, its temp dir in WORK), submits ENTRYPOINT with
REPO as the working dir, stops the head and prints one JSON line: the job's status, the `python` the
job ran and the seconds each part took.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from s3server import free_ports

from amc_dist.distributed import loopback

UNSHARE = ["unshare", "-n", "-p", "-f", "--mount-proc", "--kill-child"]
# bash as the namespace's init reaps the head's orphaned processes (else `ray stop` waits on zombies)
AS_INIT = ["bash", "-c", '"$@"; status=$?; exit $status', "init"]

PORT_FLAGS = (
    "port", "dashboard-port", "ray-client-server-port", "node-manager-port", "object-manager-port",
    "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port",
    "runtime-env-agent-port",
)  # fmt: skip


def namespaces_work() -> bool:
    """Whether this machine lets us make PID + network namespaces (root, or user namespaces)."""
    probe = subprocess.run([*UNSHARE, "true"], capture_output=True)
    return probe.returncode == 0


def head_env(work: Path) -> dict[str, str]:
    """The head's and the client's environment: loopback settings, token auth with a fresh random
    token (mode 600), and this interpreter's bin/ first on PATH so the job's `python` is this venv's."""
    token = work / "auth_token"
    with open(os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(secrets.token_hex(32))
    # the job imports amc_dist from its working dir, never from a path this process was given
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_") and k != "PYTHONPATH"}
    env.update(loopback.ENV)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    return env


@dataclass(frozen=True)
class Head:
    env: dict[str, str]  # the head's and its clients' environment (token auth)
    dashboard: str  # http://127.0.0.1:PORT, the job API
    gcs: str  # 127.0.0.1:PORT, what ray.init(address=...) joins
    ray: str  # the `ray` executable


@contextlib.contextmanager
def ray_head(work: Path, timings: dict[str, float]) -> Iterator[Head]:
    """A `ray start --head` in this namespace, stopped (`ray stop`) on exit; `timings` gets head_start_s
    and stop_s."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    env = head_env(work)
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
    ray = str(Path(sys.executable).parent / "ray")
    started = time.monotonic()
    subprocess.run(
        [ray, "start", "--head", f"--temp-dir={work / 'ray'}", "--node-ip-address=127.0.0.1",
         "--dashboard-host=127.0.0.1", "--disable-usage-stats", "--num-cpus=2",
         *(f"--{flag}={port}" for flag, port in ports.items())],
        env=env, check=True,
    )  # fmt: skip
    timings["head_start_s"] = time.monotonic() - started
    try:
        yield Head(env, f"http://127.0.0.1:{ports['dashboard-port']}", f"127.0.0.1:{ports['port']}", ray)
    finally:
        started = time.monotonic()
        subprocess.run([ray, "stop"], env=env, check=False)  # this PID namespace's Ray only
        timings["stop_s"] = time.monotonic() - started


def main(work: Path, repo: str, submission_id: str, entrypoint: list[str]) -> int:
    timings: dict[str, float] = {}
    with ray_head(work, timings) as head:
        started = time.monotonic()
        submitted = subprocess.run(
            [head.ray, "job", "submit", "--address", head.dashboard, "--working-dir", repo,
             "--submission-id", submission_id, "--", *entrypoint],
            env=head.env,
        )  # fmt: skip
        timings["job_s"] = time.monotonic() - started
        os.environ.update(head.env)  # the client below authenticates with the same token
        from ray.job_submission import JobSubmissionClient

        client = JobSubmissionClient(head.dashboard)
        status = str(client.get_job_status(submission_id).value)
        logs = client.get_job_logs(submission_id)
    print(json.dumps({"submit_rc": submitted.returncode, "status": status, "timings": timings,
                      "python": next((line.split(" ", 1)[1] for line in logs.splitlines()
                                      if line.startswith("python: ")), None)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    work_dir, repo_dir, job_id, separator, *command = sys.argv[1:]
    assert separator == "--", "usage: namespaced_ray_job.py WORK REPO ID -- ENTRYPOINT..."
    sys.exit(main(Path(work_dir), repo_dir, job_id, command))
