"""What `amc-tui` follows with no argument: the metrics hub of the local Ray cluster, or, when no
cluster runs on this machine, the runs under ./runs in storage."""

from __future__ import annotations

from amc_tui.hub_source import HubSource, NoCluster
from amc_tui.source import RunFeed
from amc_tui.storage_source import StorageSource

DEFAULT_RUNS = "runs"


class HubOrRuns:
    def __init__(self, hub: HubSource, runs: StorageSource) -> None:
        self.hub, self.runs = hub, runs
        self.current: HubSource | StorageSource = hub

    def poll(self) -> list[RunFeed]:
        if self.current is self.hub:
            try:
                return self.hub.poll()
            except NoCluster:
                self.current = self.runs  # for good: restart amc-tui to look for a cluster again
        return self.current.poll()

    def describe(self) -> str:
        if self.current is self.runs:
            return f"no local Ray cluster: {self.runs.describe()}"
        return self.hub.describe()

    def dashboard_url(self) -> str | None:
        return self.current.dashboard_url()

    def close(self) -> None:
        self.hub.close()
