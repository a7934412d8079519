"""Progress as plain events: the contract between training, the runners, the metrics hub and the TUI.

The core emits dicts through a callback (`EventSink`); it never knows who listens. `Reporter` stamps
each event and fans it out, e.g. to `metrics.jsonl`, the metrics hub and a progress display.

Schema version 1 (this is its one description). Every event is a JSON object with

    schema   1                      id      unique per event ("<emitter>-<n>"): duplicates are dropped
    run_id   the run                time    seconds since the epoch
    kind     one of KINDS           stage   the step (or fit) it is about; step: the optimiser step

and per kind:

    run_started     graph: [{name, needs, kind, description}], dataset, model, variants, order, attempt
                    (1 for a fresh run, +1 per resume), runner ("in-process" | "ray"), steps (to run)
    step_started    step_kind (train | fit_proxy | evaluate | report)
    step_finished   skipped (true when a previous attempt completed it), seconds
    step_failed     message (the exception), stopped (dependants that will not run)
    stage_started   one fit begins: total_steps, epochs, rank, world
    progress        epoch, total_steps, and loss (a batch) or epoch_loss (an epoch's mean)
    eval            setting (clean | whitebox | blackbox | proxy | squeezed ...), attack, n, epoch (while
                    training); metric "error_rate" with error_rate in [0, 1], or another metric (e.g.
                    "agreement", "smell") with its value; model and row (the evaluated row: model,
                    model+fs squeezed, model+fs_bpda squeezed and attacked through BPDA) where one
                    attack runs on several rows
    stage_finished  one fit ends: epochs
    heartbeat       running: the steps in progress (every few seconds while a run is alive)
    run_finished    status ("done" | "failed"), failed: {step: message}

A reader tolerates unknown kinds, unknown fields and newer schema versions.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

EventSink = Callable[[dict[str, Any]], None]

SCHEMA_VERSION = 1
KINDS = (
    "run_started",
    "step_started",
    "step_finished",
    "step_failed",
    "stage_started",
    "progress",
    "eval",
    "stage_finished",
    "heartbeat",
    "run_finished",
)


def ignore(_: dict[str, Any]) -> None:
    """The sink of code run without a listener."""


def event(kind: str, stage: str, step: int, **fields: Any) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}; expected one of {', '.join(KINDS)}")
    return {"kind": kind, "stage": stage, "step": step, **fields}


def metric(stage: str, setting: str, name: str, value: float, n: int, **fields: Any) -> dict[str, Any]:
    """An eval event for a figure that is not an error rate (proxy agreement, a smell test)."""
    return event("eval", stage, 0, setting=setting, attack=name, metric=name, value=value, n=n, **fields)


# What an evaluation row's suffix after the model's name means (the rows of evaluation.report).
ROW_MEANING = {
    "": "the bare model",
    "+fs": "through the squeezer",
    "+fs_bpda": "through the squeezer, by BPDA",
}


def measured(payload: dict[str, Any]) -> str:
    """What an eval event measured, in words: its setting and attack, and the row where it names one (the
    strong attacks run on the bare model, through the squeezer and through BPDA)."""
    setting, attack = payload.get("setting"), payload.get("attack")
    what = str(setting) if attack in (None, setting) else f"{setting} {attack}"
    row, model = payload.get("row"), str(payload.get("model", ""))
    if isinstance(row, str):
        meaning = ROW_MEANING.get(row[len(model) :]) if row.startswith(model) else None
        what += f" on {row}" + (f" ({meaning})" if meaning else "")
    return what


class Reporter:
    """Stamps events (schema, id, run_id, time) and passes each to every sink. Thread-safe. run_finished
    is a run's last event: a heartbeat that races it (the beat thread stops just after) is dropped."""

    def __init__(self, run_id: str, sinks: Iterable[EventSink]) -> None:
        self.run_id = run_id
        self.sinks = list(sinks)
        self._source = uuid.uuid4().hex[:12]
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._finished = False

    def __call__(self, payload: dict[str, Any]) -> None:
        with self._lock:
            if self._finished and payload.get("kind") == "heartbeat":
                return
            self._finished = self._finished or payload.get("kind") == "run_finished"
            stamped = {
                "schema": SCHEMA_VERSION,
                "id": f"{self._source}-{next(self._counter)}",
                "run_id": self.run_id,
                "time": time.time(),
                **payload,
            }
            for sink in self.sinks:
                sink(stamped)


class BatchingSink:
    """Collects events and hands them to `send` in batches: at once for anything but batch progress,
    otherwise at most every `every` seconds; `close` sends the rest. So a step's events are delivered by
    the time it ends, without one write (or remote call) per optimiser step."""

    def __init__(self, send: Callable[[list[dict[str, Any]]], None], every: float = 1.0) -> None:
        self._send, self.every = send, every
        self._buffer: list[dict[str, Any]] = []
        self._last = time.monotonic()

    def __call__(self, payload: dict[str, Any]) -> None:
        self._buffer.append(payload)
        if payload["kind"] != "progress" or time.monotonic() - self._last >= self.every:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            batch, self._buffer = self._buffer, []
            self._send(batch)
        self._last = time.monotonic()

    def close(self) -> None:
        self.flush()
