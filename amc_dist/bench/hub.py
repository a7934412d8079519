"""`amc bench hub`: how many events per second the metrics hub stores, by batch size and publishers.

Every step of every run sends its events to one hub actor, which stores them in the run's event log
before it acknowledges. That actor is the design's one shared point, so its throughput bounds how many
steps can report at once. Each point runs P publishers (threads in up to 8 actor processes, as steps
are processes) that call `publish` back to back with batches of B events for a fixed time, on an
embedded Ray, the event logs in a temp dir (or on S3 with `--storage`, or behind a per-write latency
with `--write-latency-ms`). Each point is measured on the group-committing hub and, as the baseline,
on the same hub taking one call at a time (`max_concurrency=1`: one write per call, the former hub).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from amc_dist.bench import latency_storage

RUN_ID = "bench-hub"
PROCESSES = 8  # publisher processes at most; more publishers share them as threads
HUBS = {"group": 1000, "serial": 1}  # max_concurrency of each hub measured


class Publisher:
    """Steps' side of the hub: `run` publishes batches of `batch` events from each of `threads`
    threads, each call waiting for the hub. `name` keeps its event ids apart from the others'."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent = 0

    def run(self, handle, run_dir: str, batch: int, seconds: float, threads: int) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        workers = [
            threading.Thread(
                target=lambda t=t: results.append(self._publish(handle, run_dir, batch, seconds, t))
            )
            for t in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return results

    def _publish(self, handle, run_dir: str, batch: int, seconds: float, thread: int) -> dict[str, Any]:
        import ray

        waits, events, sent, start = [], 0, 0, time.perf_counter()
        while not waits or time.perf_counter() - start < seconds:  # at least one call
            payload = [self._event(f"{self.name}-{thread}", sent := sent + 1) for _ in range(batch)]
            called = time.perf_counter()
            events += ray.get(handle.publish.remote(RUN_ID, run_dir, payload))
            waits.append(time.perf_counter() - called)
        return {"events": events, "waits": waits, "seconds": time.perf_counter() - start}

    @staticmethod
    def _event(source: str, n: int) -> dict[str, Any]:
        """A typical progress event (what a training step sends most), with a unique id."""
        return {
            "schema": 1,
            "id": f"{source}-{n}",
            "run_id": RUN_ID,
            "time": time.time(),
            "kind": "progress",
            "stage": "amc_target.1",
            "step": n,
            "epoch": 1,
            "total_steps": 469,
            "loss": 0.6931,
        }


def measure(
    work: str, batches: list[int], publishers: list[int], seconds: float, hubs: list[str] = ("group",)
) -> list[dict[str, Any]]:
    """One point per (hub, publisher count, batch size) on the connected Ray, the runs under `work` (a
    path or URL). Each hub is an actor of its own (not the cluster's named hub), killed at the end."""
    import ray

    from amc_dist import storage
    from amc_dist.bench.hub_actor import BenchHub
    from amc_dist.distributed.hub import ACTOR_OPTIONS

    processes = min(PROCESSES, max(publishers))
    pool = [ray.remote(num_cpus=0)(Publisher).remote(f"bench-hub-{i}") for i in range(processes)]
    points = []
    try:
        for kind in hubs:
            index = storage.join(work, kind, "hub", "index.json")
            options = ACTOR_OPTIONS | {"max_concurrency": HUBS[kind]}
            handle = ray.remote(BenchHub).options(**options).remote(index)
            try:
                # Warm up: each process, its first call and the hub's first write are not timed.
                ray.get([p.run.remote(handle, storage.join(work, kind, "warm-up"), 1, 0.0, 1) for p in pool])
                for count in publishers:
                    for batch in batches:
                        run_dir = storage.join(work, kind, "runs", f"b{batch}-p{count}")
                        points.append(_point(handle, pool, run_dir, batch, count, seconds) | {"hub": kind})
            finally:
                ray.kill(handle)
    finally:
        for p in pool:
            ray.kill(p)
    return points


def _point(handle, pool, run_dir: str, batch: int, count: int, seconds: float) -> dict[str, Any]:
    import ray

    threads = [count // len(pool) + (i < count % len(pool)) for i in range(len(pool))]
    calls = [
        p.run.remote(handle, run_dir, batch, seconds, n) for p, n in zip(pool, threads, strict=True) if n
    ]
    results = [r for rs in ray.get(calls) for r in rs]
    events = sum(r["events"] for r in results)
    waits = sorted(w for r in results for w in r["waits"])
    elapsed = max(r["seconds"] for r in results)
    stored = len(ray.get(handle.events.remote(run_dir)))
    if stored != events:
        raise RuntimeError(f"the hub acknowledged {events} events of {run_dir} but holds {stored}")
    return {
        "batch": batch,
        "publishers": count,
        "events": events,
        "calls": len(waits),
        "seconds": elapsed,
        "events_per_s": events / elapsed,
        "calls_per_s": len(waits) / elapsed,
        "wait_ms": 1000 * sum(waits) / len(waits),  # what a publisher waits per call, on average
        "wait_p95_ms": 1000 * waits[min(len(waits) - 1, int(0.95 * len(waits)))],
    }


def report(
    work: str, batches: list[int], publishers: list[int], seconds: float, hubs: list[str]
) -> dict[str, Any]:
    """Start an embedded Ray, measure every point, shut it down; the JSON report."""
    from amc_dist.distributed.cluster import connect

    started = time.perf_counter()
    with connect() as how:
        ray_start = time.perf_counter() - started
        points = measure(work, batches, publishers, seconds, hubs)
    latency = work.startswith(latency_storage.PROTOCOL)
    return {
        "storage": "s3" if work.startswith("s3://") else "latency" if latency else "local",
        "write_latency_ms": latency_storage.latency(work) if latency else 0.0,
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

    where = result["storage"]
    if result["write_latency_ms"]:
        where = f"local storage behind {result['write_latency_ms']:g} ms per write"
    title = f"metrics hub on {where} ({result['seconds_per_point']:g} s per point)"
    table = Table(title=title)
    columns = ("hub", "batch", "publishers", "events/s", "calls/s", "wait ms/call", "p95 wait ms", "events")
    for column in columns:
        table.add_column(column, justify="right")
    for p in result["points"]:
        table.add_row(
            p["hub"],
            str(p["batch"]),
            str(p["publishers"]),
            f"{p['events_per_s']:.0f}",
            f"{p['calls_per_s']:.0f}",
            f"{p['wait_ms']:.1f}",
            f"{p['wait_p95_ms']:.1f}",
            str(p["events"]),
        )
    Console().print(table)


def _ints(text: str) -> list[int]:
    values = [int(v) for v in text.split(",")]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return values


def _hubs(text: str) -> list[str]:
    values = text.split(",")
    if not values or set(values) - set(HUBS):
        raise argparse.ArgumentTypeError(f"expected some of {','.join(HUBS)}, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="amc bench hub", description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=_ints, default=[10], help="events per call (10)")
    parser.add_argument(
        "--publishers", type=_ints, default=[1, 4, 16, 64], help="concurrent publishers (1,4,16,64)"
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each point (2)")
    parser.add_argument(
        "--hubs", type=_hubs, default=list(HUBS), help="group (commits), serial (one write per call): both"
    )
    where = "where the event logs go (removed afterwards): s3://bucket/prefix or a directory; default temp"
    parser.add_argument("--storage", metavar="URL", help=where)
    parser.add_argument(
        "--write-latency-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="local event logs as objects whose every write waits MS ms, as on a remote object store",
    )
    parser.add_argument("--out", help="write the JSON report here")
    args = parser.parse_args(argv)
    if args.storage and args.write_latency_ms:
        parser.error("--write-latency-ms applies to local storage: leave out --storage")
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
            result = report(work, args.batches, args.publishers, args.seconds, args.hubs)
        finally:
            fs, path = storage.filesystem(work)
            if fs.exists(path):
                fs.rm(path, recursive=True)
    else:
        with tempfile.TemporaryDirectory(prefix="amc-bench-hub-") as directory:
            if args.write_latency_ms:
                directory = latency_storage.url(args.write_latency_ms, directory)
            result = report(directory, args.batches, args.publishers, args.seconds, args.hubs)
    print_table(result)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
