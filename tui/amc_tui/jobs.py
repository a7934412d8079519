"""Stopping a run's job through the Ray dashboard's job HTTP API (`GET /api/jobs/`,
`POST /api/jobs/<id>/stop`), with the cluster's token when token auth is on. Plain HTTP: no Ray import.

A run's events do not name the job that runs it, so the job is found by its entrypoint: a submitted
job whose command line names the run's directory or `--run-id <id>`.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ACTIVE = ("PENDING", "RUNNING")


class JobsError(Exception):
    """The job API refused or could not be reached."""


@dataclass(frozen=True)
class Job:
    submission_id: str | None  # None for a driver that was not submitted (it cannot be stopped here)
    status: str
    entrypoint: str

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


def find_token() -> str | None:
    """The cluster token the way Ray's own clients find it: RAY_AUTH_TOKEN, the file at
    RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


class JobsClient:
    def __init__(self, dashboard: str, token: str | None = None, timeout: float = 10.0) -> None:
        self.base = dashboard if "://" in dashboard else f"http://{dashboard}"
        self.base = self.base.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _request(self, method: str, path: str) -> object:
        request = urllib.request.Request(self.base + path, method=method)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace").strip().splitlines()
            raise JobsError(f"{method} {path}: HTTP {error.code} {detail[-1] if detail else ''}") from error
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise JobsError(f"{method} {path}: {error}") from error

    def jobs(self) -> list[Job]:
        answer = self._request("GET", "/api/jobs/")
        if not isinstance(answer, list):
            raise JobsError(f"unexpected answer from {self.base}/api/jobs/")
        return [
            Job(j.get("submission_id"), str(j.get("status")), str(j.get("entrypoint") or ""))
            for j in answer
            if isinstance(j, dict)
        ]

    def stop(self, submission_id: str) -> bool:
        """Ask the cluster to stop the job; True if it was running and is being stopped."""
        answer = self._request("POST", f"/api/jobs/{submission_id}/stop")
        return bool(isinstance(answer, dict) and answer.get("stopped"))

    def status(self, submission_id: str) -> str:
        answer = self._request("GET", f"/api/jobs/{submission_id}")
        return str(answer.get("status")) if isinstance(answer, dict) else "?"


def jobs_of_run(jobs: list[Job], run_id: str, run_dir: str) -> list[Job]:
    """The active jobs whose entrypoint names this run: its directory, or `--run-id <id>`."""
    end = r"(?=['\"\s/]|$)"  # a whole path or id, not the start of a longer one
    names = [re.escape(run_dir) + end]
    if run_id:
        names.append(rf"--run-id[= ]['\"]?{re.escape(run_id)}{end}")
    pattern = re.compile("|".join(names))
    return [job for job in jobs if job.active and pattern.search(job.entrypoint)]
