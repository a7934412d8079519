"""Helpers for tests that run a launch as a separate program: a clean environment for it, a bounded run
that ends only the processes it started, and an audit of `strace -e trace=connect` output that names
every connection leaving loopback."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass

from amc_dist.distributed import loopback

STRACE = "/usr/bin/strace"
_INET = re.compile(r'sa_family=AF_INET, sin_port=htons\((\d+)\), sin_addr=inet_addr\("([^"]*)"\)')
_INET6 = re.compile(r'sa_family=AF_INET6, sin6_port=htons\((\d+)\).*?inet_pton\(AF_INET6, "([^"]*)"')


def _loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is how a dual-stack socket reaches 127.0.0.1
    return ip.is_loopback


def outside_connections(strace_lines: Iterable[str]) -> list[str]:
    """The `connect` lines of an strace log that reach past 127.0.0.0/8 and ::1, and every DNS query
    (port 53, wherever it goes). An AF_INET/AF_INET6 line whose address cannot be read counts too."""
    found = []
    for line in strace_lines:
        if "connect(" not in line or not re.search(r"sa_family=AF_INET6?,", line):
            continue
        match = _INET.search(line) or _INET6.search(line)
        if match is None or match[1] == "53" or not _loopback(match[2]):
            found.append(line.rstrip("\n"))
    return found


def launch_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything Ray or the loopback settings put there, so the
    launched program has to bring its own (the test session applied them for its own Ray)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RAY_") and k not in loopback.ENV and k.lower() not in ("http_proxy", "no_proxy")
    }
    return {**env, **extra}


@dataclass(frozen=True)
class Finished:
    returncode: int
    output: str
    seconds: float

    def report(self) -> dict:
        """The JSON object a helper script prints as its result: its last line that is one (Ray's raylet
        may print into the same stream after it, e.g. about an actor ended on purpose)."""
        for line in reversed(self.output.strip().splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        raise AssertionError(f"no JSON result line in:\n{self.output[-4000:]}")


def run_bounded(command: list[str], env: dict[str, str], cwd: str, timeout_s: float) -> Finished:
    """Run `command` in its own process group; on timeout end that group (ours alone) and fail."""
    started = time.monotonic()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"{command[:4]}... ran past {timeout_s:.0f} s:\n{output[-4000:]}") from None
    return Finished(process.returncode, output, time.monotonic() - started)
