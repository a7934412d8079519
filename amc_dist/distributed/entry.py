"""What the Ray entry points (`launch`, `tune`) share: the loopback settings applied before Ray is
imported (unless joining a cluster), and a bad config or sweep file reported as exit code 2."""

from __future__ import annotations

import os
from collections.abc import Callable

from amc_dist.console import reporting_errors


def run_on_ray(work: Callable[[], int]) -> int:
    if not os.environ.get("RAY_ADDRESS"):
        from amc_dist.distributed import loopback

        loopback.apply()
    return reporting_errors(work)
