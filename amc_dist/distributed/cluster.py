"""Connecting to Ray: join the cluster a job runs on (`RAY_ADDRESS`, set by `ray job submit`), or start
an embedded single-machine Ray that stays on loopback (`loopback.py`), reports nothing, lives in its own
temp dir with its own token and is shut down (temp dir removed) when the launch ends."""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator

import ray

from amc_dist import storage
from amc_dist.distributed import loopback

NAMESPACE = "amc"

# Ray Train's controller polls its workers every 2 s by default; short steps pay for it.
TRAIN_ENV = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2"}
# What a step's processes need from the launching environment (data cache, download mirror).
FORWARDED = ("AMC_DATA", "AMC_DATA_MIRROR")


def worker_env() -> dict[str, str]:
    """Environment for every task, actor and Train worker of a launch."""
    env = {k: os.environ[k] for k in FORWARDED if k in os.environ}
    return {**TRAIN_ENV, **env}


def job_runtime_env() -> dict | None:
    """What every process of this launch needs and cannot know otherwise: an S3 endpoint that came from
    the config (not from the AWS variables every process reads) travels as AWS_ENDPOINT_URL_S3. Given to
    the whole job, so it reaches processes started without a runtime env of their own (the metrics hub).
    Credentials never travel: each node's environment holds them."""
    endpoint = storage.configured_endpoint()
    if endpoint is None or os.environ.get("AWS_ENDPOINT_URL_S3") == endpoint:
        return None  # nothing new (and a key the job's own runtime env sets would conflict)
    return {"env_vars": {"AWS_ENDPOINT_URL_S3": endpoint}}


@contextlib.contextmanager
def connect(num_cpus: int | None = None, num_gpus: int | None = None) -> Iterator[str]:
    """Join the cluster named by RAY_ADDRESS, or start an embedded one (declaring `num_gpus` GPUs, if
    given: Ray then schedules shares of GPUs this machine may not have); yield which ("cluster" or
    "embedded"). An embedded Ray is shut down and its temp dir removed on exit."""
    if ray.is_initialized():
        yield "attached"
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(
            address=os.environ["RAY_ADDRESS"],
            namespace=NAMESPACE,
            runtime_env=job_runtime_env(),
            log_to_driver=False,
        )
        try:
            yield "cluster"
        finally:
            ray.shutdown()
        return
    loopback.apply()  # again, for the processes it starts (launch applies it before importing ray)
    for key, value in TRAIN_ENV.items():
        os.environ.setdefault(key, value)
    temp_dir = tempfile.mkdtemp(prefix="amc-ray-")
    if "RAY_AUTH_TOKEN_PATH" not in os.environ and "RAY_AUTH_TOKEN" not in os.environ:
        # The embedded cluster's token lives outside the user's ~/.ray; one per process, since Ray reads
        # it once per process (a second embedded cluster must take the same).
        os.environ["RAY_AUTH_TOKEN_PATH"] = _process_token()
    try:
        ray.init(
            address="local",
            namespace=NAMESPACE,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            runtime_env=job_runtime_env(),
            _temp_dir=temp_dir,
            _node_ip_address="127.0.0.1",
            dashboard_host="127.0.0.1",
            dashboard_port=free_port(),  # not 8265: another Ray on this machine may hold it
            log_to_driver=False,
        )
        yield "embedded"
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


@functools.cache
def _process_token() -> str:
    """A random token file (mode 600) for this process's embedded clusters, removed when it exits."""
    directory = tempfile.mkdtemp(prefix="amc-ray-token-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = os.path.join(directory, "auth_token")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(secrets.token_hex(32))
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cluster_cpus() -> int:
    return int(ray.cluster_resources().get("CPU", 1))
