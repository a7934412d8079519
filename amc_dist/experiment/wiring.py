"""What every way of starting a run shares (`amc run`, `amc train`, `python -m amc_dist.launch`): the
config with its overrides, the run id and directory, and the reporter that stamps events and sends them
to the run's `metrics.jsonl`, a progress display and any other sink, with a heartbeat while it lives."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from amc_dist import storage
from amc_dist.config import Config, ConfigError, load_config
from amc_dist.eventlog import EventLog
from amc_dist.events import BatchingSink, EventSink, Reporter, event

HEARTBEAT_SECONDS = 5.0


@dataclass(frozen=True)
class RunSpec:
    config: Config
    run_id: str
    run_dir: str


def resolve_run(
    config_path: str, overrides: list[str], run_id: str | None = None, output: str | None = None
) -> RunSpec:
    """Load and validate the config (`output` is shorthand for `--set run.output=...`); pick the run id
    (given, the config's, or a timestamp) and its directory under `run.output`, which must be writable."""
    if output is not None:
        overrides = [*overrides, f"run.output={output}"]
    config = load_config(config_path, overrides)
    storage.configure(config.run.s3_endpoint)
    chosen = run_id or config.run.run_id or time.strftime("%Y%m%d-%H%M%S")
    problem = storage.unwritable(config.run.output)
    if problem is not None:
        where = "--storage" if output is not None else "run.output"
        raise ConfigError(f"{where} {config.run.output}: {problem}")
    return RunSpec(config, chosen, storage.join(config.run.output, chosen))


class RunningSteps:
    """An event sink that remembers which steps are in progress (for heartbeats)."""

    def __init__(self) -> None:
        self._running: dict[str, None] = {}
        self._lock = threading.Lock()

    def __call__(self, payload: dict[str, Any]) -> None:
        with self._lock:
            if payload["kind"] == "step_started":
                self._running[payload["stage"]] = None
            elif payload["kind"] in ("step_finished", "step_failed"):
                self._running.pop(payload["stage"], None)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._running)


@contextlib.contextmanager
def heartbeat(on_event: EventSink, running: RunningSteps, every: float = HEARTBEAT_SECONDS) -> Iterator[None]:
    """Emit a heartbeat naming the running steps every `every` seconds until the block ends."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            on_event(event("heartbeat", "run", 0, running=running.names()))

    thread = threading.Thread(target=beat, name="amc-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def reporting(run: RunSpec, *sinks: EventSink, log: bool = True) -> Iterator[Reporter]:
    """A reporter for the run: events to `sinks`, to `metrics.jsonl` when `log` (a runner whose events go
    through the metrics hub leaves the file to the hub), with heartbeats."""
    running = RunningSteps()
    with contextlib.ExitStack() as stack:
        targets: list[EventSink] = [running, *sinks]
        if log:
            metrics = BatchingSink(EventLog(run.run_dir).append)
            stack.callback(metrics.close)
            targets.append(metrics)
        reporter = Reporter(run.run_id, targets)
        stack.enter_context(heartbeat(reporter, running))
        yield reporter
