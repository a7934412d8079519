"""`amc bench hub`: how many events per second the metrics hub stores, by batch size and publishers.

Every step of every run sends its events to one hub actor, which appends each batch to the run's event
log (fsynced) before it acknowledges. That actor is the design's one serial point, so its throughput
bounds how many steps can report at once. Each point runs P publisher actors (separate processes, as
steps are) that call `publish` back to back with batches of B events for a fixed time, on an embedded
Ray, the event logs in a temp dir (or on S3 with `--storage`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

RUN_ID = "bench-hub"


class Publisher:
    """One step's side of the hub: publish batches of `batch` events, each call waiting for the hub.
    `name` keeps its event ids apart from the other publishers'."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent = 0

    def run(self, run_dir: str, batch: int, seconds: float) -> dict[str, float]:
        import ray

        from amc_dist.distributed.hub import hub

        handle = hub()
        calls, events, start = 0, 0, time.perf_counter()
        while calls == 0 or time.perf_counter() - start < seconds:  # at least one call
            payload = [self._event() for _ in range(batch)]
            events += ray.get(handle.publish.remote(RUN_ID, run_dir, payload))
            calls += 1
        return {"calls": calls, "events": events, "seconds": time.perf_counter() - start}

    def _event(self) -> dict[str, Any]:
        """A typical progress event (what a training step sends most), with a unique id."""
        self.sent += 1
        return {
            "schema": 1,
            "id": f"{self.name}-{self.sent}",
            "run_id": RUN_ID,
            "time": time.time(),
            "kind": "progress",
            "stage": "amc_target.1",
            "step": self.sent,
            "epoch": 1,
            "total_steps": 469,
            "loss": 0.6931,
        }


def measure(
    work: str, batches: list[int], publishers: list[int], seconds: float
) -> list[dict[str, float | int]]:
    """One point per (batch size, publisher count) on the connected Ray, the runs under `work` (a path
    or URL); the hub is created with its index there and, if this call created it, killed at the end."""
    import ray

    from amc_dist import storage
    from amc_dist.distributed.cluster import NAMESPACE
    from amc_dist.distributed.hub import HUB_NAME, hub

    try:
        ray.get_actor(HUB_NAME, namespace=NAMESPACE)
        existed = True
    except ValueError:
        existed = False
    handle = hub(storage.join(work, "hub", "index.json"))
    ray.get(handle.ping.remote())
    actor = ray.remote(num_cpus=0)(Publisher)
    pool = [actor.remote(f"bench-hub-{i}") for i in range(max(publishers))]
    points = []
    try:
        # Warm up: each publisher's process, its first call and the hub's first write are not timed.
        ray.get([p.run.remote(storage.join(work, "runs", "warm-up"), 1, 0.0) for p in pool])
        for count in publishers:
            for batch in batches:
                run_dir = storage.join(work, "runs", f"b{batch}-p{count}")
                results = ray.get([p.run.remote(run_dir, batch, seconds) for p in pool[:count]])
                events = sum(r["events"] for r in results)
                calls = sum(r["calls"] for r in results)
                elapsed = max(r["seconds"] for r in results)
                stored = len(ray.get(handle.events.remote(run_dir)))
                if stored != events:
                    raise RuntimeError(
                        f"the hub acknowledged {events} events of {run_dir} but holds {stored}"
                    )
                points.append(
                    {
                        "batch": batch,
                        "publishers": count,
                        "events": events,
                        "calls": calls,
                        "seconds": elapsed,
                        "events_per_s": events / elapsed,
                        "calls_per_s": calls / elapsed,
                        "ms_per_call": 1000 * elapsed * count / calls,
                    }
                )
    finally:
        for p in pool:
            ray.kill(p)
        if not existed:
            ray.kill(handle, no_restart=True)
    return points


def report(work: str, batches: list[int], publishers: list[int], seconds: float) -> dict[str, Any]:
    """Start an embedded Ray, measure every point, shut it down; the JSON report."""
    from amc_dist.distributed.cluster import connect

    started = time.perf_counter()
    with connect() as how:
        ray_start = time.perf_counter() - started
        points = measure(work, batches, publishers, seconds)
    return {
        "storage": "s3" if work.startswith("s3://") else "local",
        "ray": how,
        "ray_start_s": ray_start,
        "seconds_per_point": seconds,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],  # a shared machine's other work slows the hub too
        "points": points,
    }


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    title = f"metrics hub on {result['storage']} storage ({result['seconds_per_point']:g} s per point)"
    table = Table(title=title)
    for column in ("batch", "publishers", "events/s", "calls/s", "ms per call", "events"):
        table.add_column(column, justify="right")
    for p in result["points"]:
        table.add_row(
            str(p["batch"]),
            str(p["publishers"]),
            f"{p['events_per_s']:.0f}",
            f"{p['calls_per_s']:.0f}",
            f"{p['ms_per_call']:.1f}",
            str(p["events"]),
        )
    Console().print(table)


def _ints(text: str) -> list[int]:
    values = [int(v) for v in text.split(",")]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="amc bench hub", description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=_ints, default=[1, 10, 100], help="events per call (1,10,100)")
    parser.add_argument("--publishers", type=_ints, default=[1, 2, 4], help="concurrent publishers (1,2,4)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each point (3)")
    where = "where the event logs go (removed afterwards): s3://bucket/prefix or a directory; default temp"
    parser.add_argument("--storage", metavar="URL", help=where)
    parser.add_argument("--out", help="write the JSON report here")
    args = parser.parse_args(argv)
    if os.environ.get("RAY_ADDRESS"):
        parser.error(
            "the benchmark starts its own embedded Ray: unset RAY_ADDRESS (it would share a cluster's hub)"
        )
    from amc_dist.distributed import loopback

    loopback.apply()
    if args.storage:
        from amc_dist import storage

        work = storage.join(args.storage, f"bench-hub-{uuid.uuid4().hex[:8]}")
        try:
            result = report(work, args.batches, args.publishers, args.seconds)
        finally:
            fs, path = storage.filesystem(work)
            if fs.exists(path):
                fs.rm(path, recursive=True)
    else:
        with tempfile.TemporaryDirectory(prefix="amc-bench-hub-") as directory:
            result = report(directory, args.batches, args.publishers, args.seconds)
    print_table(result)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
