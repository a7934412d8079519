"""Where the dashboard's events come from. One interface, `MetricsClient.poll()`; this file reads a
run's `metrics.jsonl` as it grows. (The live metrics-hub client arrives with the Ray layer.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol


class MetricsClient(Protocol):
    def poll(self) -> list[dict[str, Any]]:
        """Events that arrived since the last call, oldest first."""


class MetricsFileClient:
    """Tails a `metrics.jsonl`, keeping a partly written last line for the next poll."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        self.path = path / "metrics.jsonl" if path.is_dir() else path
        self._offset = 0
        self._pending = b""

    def poll(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        self._offset += len(chunk)
        lines = (self._pending + chunk).split(b"\n")
        self._pending = lines.pop()
        events = []
        for line in lines:
            if line.strip():
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a corrupt line must not stop the monitor
        return events
