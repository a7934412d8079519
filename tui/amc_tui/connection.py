"""The dashboard's link to its source: connected or not, since when, and how long to wait before the
next poll (the poll interval while it answers, doubling up to a cap while it does not)."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Connection:
    interval: float = 1.0
    max_delay: float = 30.0
    state: str = "connecting"  # connecting | connected | unreachable
    message: str = ""
    failures: int = 0
    last_ok: float | None = None
    retry_at: float | None = None

    def succeeded(self) -> float:
        """Record an answered poll; the delay before the next one."""
        self.state, self.message, self.failures = "connected", "", 0
        self.last_ok = time.time()
        self.retry_at = None
        return self.interval

    def failed(self, message: str) -> float:
        """Record a failed poll; the delay before the next attempt (exponential backoff)."""
        self.state, self.message = "unreachable", message
        delay = min(self.max_delay, self.interval * 2**self.failures)
        self.failures += 1
        self.retry_at = time.time() + delay
        return delay
