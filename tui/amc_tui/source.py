"""Where the dashboard's events come from: one interface, `EventSource.poll()`, with two
implementations, the cluster's metrics hub (`hub_source.py`) and storage (`storage_source.py`).

A poll blocks (it runs in a worker thread) and returns what is new per run; it raises `Unreachable`
when the hub or the storage cannot be reached, and the dashboard then keeps its last data and retries.
Nothing here imports Textual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class Unreachable(Exception):
    """The source cannot be reached now; a later poll may succeed."""


@dataclass
class RunFeed:
    """What one poll brought for one run."""

    key: str  # the run's directory or URL (unique)
    run_id: str
    events: list[Any] = field(default_factory=list)  # new, oldest first; not necessarily valid events
    corrupt: int = 0  # lines skipped since the last poll (not JSON objects in UTF-8)
    missing: bool = False  # its directory does not exist (yet)
    reset: bool = False  # the source started this run over: forget what it said before
    dropped: bool = False  # not a run after all (a folder of runs that did not exist at first)


class EventSource(Protocol):
    def poll(self) -> list[RunFeed]:
        """New events of every run this source follows (runs with nothing new may be left out)."""

    def describe(self) -> str:
        """Where the events come from, for the connection bar."""

    def dashboard_url(self) -> str | None:
        """The Ray dashboard whose job API can stop this source's runs, when known."""

    def close(self) -> None: ...
