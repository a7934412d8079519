"""Runs followed through the cluster's metrics hub (amc_dist/distributed/hub.py): the named, detached
actor "metrics-hub" in namespace "amc" that holds every run's events.

Ray is imported on the first poll (in the dashboard's worker thread), never when amc_tui is imported:
the dashboard starts at once and works without a cluster. A process that already runs Ray (a test, a
notebook) is reused as it is; otherwise this joins `address` (RAY_ADDRESS, else the cluster the last
`ray start` on this machine recorded).
"""

from __future__ import annotations

import faulthandler
import logging
import os
import sys
import threading
from typing import Any

from amc_dist.distributed import loopback
from amc_tui.source import RunFeed, Unreachable

HUB_NAME = "metrics-hub"  # amc_dist.distributed.hub.HUB_NAME (that module imports ray at once)
NAMESPACE = "amc"
CHUNK = 5000  # events per run per poll: a long run's history arrives over a few polls, input stays live


class NoCluster(Unreachable):
    """No Ray cluster could be found at all (as opposed to one that stopped answering)."""


class HubSource:
    def __init__(self, address: str | None = None, timeout: float = 5.0) -> None:
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.timeout = timeout
        self._handle: Any = None
        self._joined = False  # we called ray.init (and so shut it down in close)
        self._dashboard: str | None = None
        self._positions: dict[str, int] = {}  # run_dir -> events received
        # close() may come (app exit) while a poll runs in its thread; a Ray call after ray.shutdown()
        # would start a new local cluster (Ray connects on first use), so the last one out shuts down
        self._lock = threading.Lock()
        self._busy = self._closed = False

    def describe(self) -> str:
        return f"metrics hub on {self.address or 'the local Ray cluster'}"

    def dashboard_url(self) -> str | None:
        return self._dashboard

    def poll(self) -> list[RunFeed]:
        with self._lock:
            if self._closed:
                raise Unreachable("closed")
            self._busy = True
        try:
            return self._poll()
        finally:
            with self._lock:
                self._busy = False
                if self._closed:
                    self._shutdown()

    def _poll(self) -> list[RunFeed]:
        if _on_this_machine(self.address):
            loopback.apply()  # before ray is imported: a local cluster is reached over loopback
        import ray
        from ray.exceptions import RayError

        try:
            handle = self._connect(ray)
            summaries = ray.get(handle.runs.remote(), timeout=self.timeout)
            wanted = []
            feeds = []
            for summary in summaries:
                key, count = summary["run_dir"], int(summary.get("events") or 0)
                have = self._positions.get(key, 0)
                feed = RunFeed(key, summary.get("run_id") or os.path.basename(key))
                if count < have:  # the hub lost events (it restarted on other storage): start over
                    feed.reset, have = True, 0
                    self._positions[key] = 0
                feeds.append(feed)
                if count > have:
                    wanted.append((feed, have))
            refs = [handle.events.remote(feed.key, since, CHUNK) for feed, since in wanted]
            for (feed, since), events in zip(wanted, ray.get(refs, timeout=self.timeout), strict=True):
                feed.events = list(events)
                self._positions[feed.key] = since + len(events)
            return feeds
        except (RayError, ValueError, KeyError, TypeError, OSError) as error:
            self._handle = None  # look the hub up again: it may come back as a new actor
            raise Unreachable(_describe(error)) from error

    def _connect(self, ray: Any) -> Any:
        if self._handle is not None:
            return self._handle
        if not ray.is_initialized():
            if not faulthandler.is_enabled():
                # ray.init enables it on sys.stderr, which Textual replaces with an object without a fileno
                faulthandler.enable(file=sys.__stderr__)
            address = self.address or _started_cluster()
            if address is None:
                raise NoCluster("no Ray cluster was started on this machine (ray start)")
            try:
                context = ray.init(
                    address=address,
                    namespace=NAMESPACE,
                    log_to_driver=False,
                    logging_level=logging.ERROR,
                )
            except ConnectionError as error:
                raise NoCluster(_describe(error)) from error
            self._joined = True
            self._dashboard = context.dashboard_url or None
        elif self._dashboard is None:
            self._dashboard = _current_dashboard()
        try:
            self._handle = ray.get_actor(HUB_NAME, namespace=NAMESPACE)
        except ValueError as error:
            raise Unreachable("no metrics hub on the cluster (a launch starts it)") from error
        return self._handle

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if not self._busy:
                self._shutdown()

    def _shutdown(self) -> None:
        if self._joined:
            import ray

            ray.shutdown()
            self._joined = False


def _started_cluster() -> str | None:
    """The cluster the last `ray start` on this machine recorded, as `ray.init()` finds it. (Not
    Ray's "auto", which also joins any Ray process it sees: another user's embedded one, say.)"""
    from ray._private.utils import read_ray_address

    return read_ray_address()


def _on_this_machine(address: str | None) -> bool:
    if address is None or address == "auto":
        return True
    host = address.split("://")[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def _current_dashboard() -> str | None:
    """The dashboard of the Ray this process already joined (Ray keeps it on its node object)."""
    try:
        from ray._private import worker

        return worker._global_node.webui_url or None
    except AttributeError:
        return None


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:200]
