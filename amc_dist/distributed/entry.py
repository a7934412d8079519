"""What the Ray entry points (`launch`, `tune`) share: the loopback settings applied before Ray is
imported (unless joining a cluster), and a bad config or sweep file reported as exit code 2."""

from __future__ import annotations

import os
from collections.abc import Callable

from rich.console import Console

from amc_dist.config import ConfigError


def run_on_ray(work: Callable[[], int]) -> int:
    if not os.environ.get("RAY_ADDRESS"):
        from amc_dist.distributed import loopback

        loopback.apply()
    try:
        return work()
    except ConfigError as exc:
        Console(stderr=True).print(f"[red]config error:[/] {exc}", highlight=False)
        return 2
