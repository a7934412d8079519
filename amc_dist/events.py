"""Progress as plain events: the contract between training, the CLI, the metrics hub and the TUI.

The core emits dicts through a callback (`EventSink`); it never knows who listens. `Reporter` stamps
each event with the run id and time and fans it out, e.g. to `metrics.jsonl` and to a progress display.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

EventSink = Callable[[dict[str, Any]], None]

KINDS = ("stage_started", "progress", "eval", "stage_finished", "run_finished", "error")


def ignore(_: dict[str, Any]) -> None:
    """The sink of code run without a listener."""


def event(kind: str, stage: str, step: int, **fields: Any) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}; expected one of {', '.join(KINDS)}")
    return {"kind": kind, "stage": stage, "step": step, **fields}


class Reporter:
    """Stamps events with `run_id` and `time` and passes each to every sink."""

    def __init__(self, run_id: str, sinks: Iterable[EventSink]) -> None:
        self.run_id = run_id
        self.sinks = list(sinks)

    def __call__(self, payload: dict[str, Any]) -> None:
        stamped = {"run_id": self.run_id, "time": time.time(), **payload}
        for sink in self.sinks:
            sink(stamped)


class JsonlSink:
    """Appends one JSON object per line and flushes, so a reader tailing the file sees events live."""

    def __init__(self, open_file: Callable[[], Any]) -> None:
        self._file = open_file()

    def __call__(self, payload: dict[str, Any]) -> None:
        self._file.write(json.dumps(payload, sort_keys=True) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
