"""Runs read from storage (a local path or any fsspec URL such as s3://), live or finished alike.

Each path given is either a run directory (it holds `metrics.jsonl` or `metrics.jsonl.d/`) or a folder
of runs (like `./runs`), whose new run directories are picked up as they appear. A path that does not
exist yet is shown as missing and resolved once it does.
"""

from __future__ import annotations

import os

from amc_dist import storage
from amc_dist.eventlog import FILE, SEGMENTS, EventReader
from amc_tui.source import RunFeed, Unreachable


def _normalise(path: str) -> str:
    path = path.rstrip("/")
    if path.endswith("/" + FILE) or path == FILE:
        path = path[: -len(FILE)].rstrip("/") or "."
    return path if "://" in path else os.path.abspath(os.path.expanduser(path))


def is_run(url: str) -> bool:
    return storage.exists(storage.join(url, FILE)) or storage.exists(storage.join(url, SEGMENTS))


class StorageSource:
    def __init__(self, paths: list[str], dashboard: str | None = None) -> None:
        self.paths = [_normalise(p) for p in paths]
        self._dashboard = dashboard
        self._readers: dict[str, EventReader] = {}
        self._roots: set[str] = set()  # paths found to be folders of runs

    def describe(self) -> str:
        return "storage " + ", ".join(self.paths)

    def dashboard_url(self) -> str | None:
        return self._dashboard

    def close(self) -> None:
        """Nothing to release: every read opens and closes its file."""

    def poll(self) -> list[RunFeed]:
        try:
            return self._poll()
        except (*storage.access_errors(), ValueError) as error:  # e.g. S3 unreachable, credentials refused
            raise Unreachable(f"{type(error).__name__}: {error}") from error

    def _poll(self) -> list[RunFeed]:
        feeds: list[RunFeed] = []
        for path in self.paths:
            if path in self._roots or (path not in self._readers and not is_run(path)):
                runs = self._runs_under(path)
                if runs and path not in self._roots:
                    self._roots.add(path)
                    feeds.append(RunFeed(path, os.path.basename(path), dropped=True))
                elif path not in self._roots:
                    feeds.append(RunFeed(path, os.path.basename(path), missing=not storage.exists(path)))
                    continue
                for run in runs:
                    self._readers.setdefault(run, EventReader(run))
            else:
                self._readers.setdefault(path, EventReader(path))
        for key, reader in self._readers.items():
            before = reader.corrupt
            events = reader.poll()
            feeds.append(RunFeed(key, os.path.basename(key), events, corrupt=reader.corrupt - before))
        return feeds

    def _runs_under(self, root: str) -> list[str]:
        """Run directories directly under `root` (hidden folders such as the hub's `.hub` left out)."""
        runs = []
        for name in storage.listdir(root):
            child = storage.join(root, name)
            if not name.startswith(".") and (child in self._readers or is_run(child)):
                runs.append(child)
        return runs
