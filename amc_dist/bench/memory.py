"""`amc bench memory -- COMMAND...`: the peak resident memory of a command and every process it starts
(an embedded Ray's raylet, GCS, workers and actors included), sampled from /proc twice a second.

RSS counts a page shared by several processes (torch's libraries) once per process; PSS splits it
between them, so the PSS sum is what the machine actually gave the run. Both peaks are printed and, with
`--out`, written as JSON with the peak process count. Linux only (it reads /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry))
    return tree


def descendants(root: int) -> list[int]:
    """`root` and every process below it."""
    tree, found, stack = _children(), [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(tree.get(pid, []))
    return found


def _kib(path: str, field: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def sample(root: int) -> dict[str, int]:
    """RSS and PSS (MiB) summed over `root`'s process tree, and how many processes it holds."""
    pids = descendants(root)
    rss = sum(_kib(f"/proc/{pid}/status", "VmRSS:") for pid in pids)
    pss = sum(_kib(f"/proc/{pid}/smaps_rollup", "Pss:") for pid in pids)
    return {"rss_mib": rss // 1024, "pss_mib": pss // 1024, "processes": len(pids)}


def measure(command: list[str], every: float = 0.5) -> dict[str, float]:
    """Run `command`; its exit code, wall seconds and the peak of each figure of `sample`."""
    started = time.monotonic()
    process = subprocess.Popen(command)
    peak = {"rss_mib": 0, "pss_mib": 0, "processes": 0}
    while process.poll() is None:
        for key, value in sample(process.pid).items():
            peak[key] = max(peak[key], value)
        time.sleep(every)
    return {"exit_code": process.returncode, "seconds": round(time.monotonic() - started, 1), **peak}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="amc bench memory", description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the figures here as JSON")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to measure")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to measure after --")
    result = measure(command)
    peak = f"peak {result['rss_mib']} MiB RSS, {result['pss_mib']} MiB PSS"
    print(f"{peak} over {result['processes']} processes; {result['seconds']} s, exit {result['exit_code']}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0 if result["exit_code"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
