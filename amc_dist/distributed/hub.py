"""The metrics hub: one named, detached actor (namespace `amc`) that receives the events of every step
and worker of every run, drops duplicates (a retried call may deliver a batch twice; events carry ids),
writes them to the run's event log in storage before acknowledging, and serves the runs and "events of
run R since N" to monitors. After a restart it reloads every run it knew from storage.

It is an async actor and commits in groups: while one write of a run is under way, the calls that
arrive for that run wait together and go out as the next single write (one append+fsync, or one
segment object), so the hub's rate is no longer one storage round trip per call. Each call is
acknowledged only once everything it brought is stored."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import ray

from amc_dist import storage
from amc_dist.distributed.cluster import NAMESPACE
from amc_dist.eventlog import EventLog, read_events
from amc_dist.events import BatchingSink

HUB_NAME = "metrics-hub"
ACTOR_OPTIONS = {"num_cpus": 0, "max_restarts": -1, "max_task_retries": -1}  # restarted, calls retried


class _Group:
    """Events of one run stored by one write; `stored` resolves when that write has returned."""

    def __init__(self, stored: asyncio.Future) -> None:
        self.events: list[dict[str, Any]] = []
        self.stored = stored


class _Run:
    """One run's events in memory, in arrival order, and its log in storage."""

    def __init__(self, run_id: str, run_dir: str) -> None:
        self.run_id, self.run_dir = run_id, run_dir
        self.log = EventLog(run_dir)
        self.events: list[dict[str, Any]] = read_events(run_dir)
        self.ids = {e.get("id") for e in self.events}
        self._next: _Group | None = None  # the events that wait for the write under way
        self._queued: dict[Any, asyncio.Future] = {}  # their ids, and when they are stored
        self._writer: asyncio.Task | None = None

    async def add(self, events: list[dict[str, Any]]) -> int:
        """Queue the events not seen yet for the run's next write and wait until they, and any of
        ours that an earlier call queued, are stored; how many were new."""
        fresh, waits = [], set()
        for e in events:
            if e.get("id") in self.ids:
                continue
            if e.get("id") in self._queued:  # an unacknowledged copy (a retry, or twice in this call)
                waits.add(self._queued[e.get("id")])
                continue
            if self._next is None:
                self._next = _Group(asyncio.get_running_loop().create_future())
            self._next.events.append(e)
            self._queued[e.get("id")] = self._next.stored
            fresh.append(e)
        if fresh:
            waits.add(self._next.stored)
            if self._writer is None or self._writer.done():
                self._writer = asyncio.create_task(self._write_groups())
        await asyncio.gather(*waits)
        return len(fresh)

    async def _write_groups(self) -> None:
        """Write the queued groups one after another, each in one append, off the event loop."""
        while self._next is not None:
            group, self._next = self._next, None
            try:
                await asyncio.to_thread(self.log.append, group.events)
            except Exception as error:  # not taken, so a retried call stores them
                for e in group.events:
                    self._queued.pop(e.get("id"), None)
                group.stored.set_exception(error)
                continue
            for e in group.events:
                self.ids.add(e.get("id"))
                self._queued.pop(e.get("id"), None)
            self.events.extend(group.events)
            group.stored.set_result(None)

    def summary(self) -> dict[str, Any]:
        started = next((e for e in reversed(self.events) if e.get("kind") == "run_started"), {})
        finished = next((e for e in reversed(self.events) if e.get("kind") == "run_finished"), None)
        return {
            "run_id": self.run_id,
            "run_dir": self.run_dir,
            "events": len(self.events),
            "dataset": started.get("dataset"),
            "model": started.get("model"),
            "last_time": self.events[-1].get("time") if self.events else None,
            "status": finished.get("status") if finished else "running",
        }


class MetricsHub:
    """The hub's state. A run is its directory (run ids may repeat across storages); `index_url` (a JSON
    list of {run_id, run_dir}) survives restarts."""

    def __init__(self, index_url: str) -> None:
        self.index_url = index_url
        index = json.loads(storage.read_bytes(index_url)) if storage.exists(index_url) else []
        self._runs = {entry["run_dir"]: _Run(entry["run_id"], entry["run_dir"]) for entry in index}
        self.started = time.time()

    async def publish(self, run_id: str, run_dir: str, events: list[dict[str, Any]]) -> int:
        """Store and keep `events` of run `run_id` in `run_dir`; return how many were new."""
        run = self._runs.get(run_dir)
        if run is None:
            run = self._runs[run_dir] = _Run(run_id, run_dir)
            self._write_index()
        return await run.add(events)

    def runs(self) -> list[dict[str, Any]]:
        return [run.summary() for run in self._runs.values()]

    def events(self, run: str, since: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Events of `run` (its directory, or its id where no other run has it) from position `since`
        (0 = the first), oldest first."""
        end = None if limit is None else since + limit
        return self._find(run).events[since:end]

    def ping(self) -> float:
        return self.started

    def _find(self, run: str) -> _Run:
        if run in self._runs:
            return self._runs[run]
        named = [r for r in self._runs.values() if r.run_id == run]
        if not named:
            raise KeyError(f"the hub knows no run {run!r}")
        if len(named) > 1:
            raise KeyError(f"{len(named)} runs have that id ({run!r}): name one by its directory")
        return named[0]

    def _write_index(self) -> None:
        index = [{"run_id": run.run_id, "run_dir": run.run_dir} for run in self._runs.values()]
        with storage.atomic_write(self.index_url) as handle:
            handle.write(json.dumps(index, sort_keys=True).encode())


def hub(index_url: str | None = None) -> ray.actor.ActorHandle:
    """The cluster's hub, started (detached, restarted on failure) if it does not run yet."""
    if index_url is None:
        return ray.get_actor(HUB_NAME, namespace=NAMESPACE)
    actor = ray.remote(MetricsHub).options(
        name=HUB_NAME,
        namespace=NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
        **ACTOR_OPTIONS,
    )
    return actor.remote(index_url)


class HubSink(BatchingSink):
    """Events to the hub in batches; each send waits for the hub's acknowledgement (the batch is then in
    storage), so the events a step emitted are stored by the time it ends."""

    def __init__(self, handle, run_id: str, run_dir: str, every: float = 1.0) -> None:
        super().__init__(lambda batch: ray.get(handle.publish.remote(run_id, run_dir, batch)), every)
