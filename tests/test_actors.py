"""The oracle and proxy actors: the three interfaces in batches, query counts persisted before answers
and surviving a restart, the budget enforced, and a proxy trained only through the oracle actor."""

import inspect
import json
import os
from pathlib import Path

import pytest
import ray
import torch

from amc_dist.blackbox.oracle import QueryBudgetExceeded
from amc_dist.config import load_config
from amc_dist.distributed.actors import OracleHost, ProxyHost, oracle_actor, proxy_actor
from amc_dist.distributed.hub import hub
from amc_dist.experiment.steps import FitProxy
from amc_dist.experiment.workspace import Workspace
from amc_dist.models import build_model_for

TINY = Path(__file__).parent / "configs" / "tiny.yaml"


def _run(tmp_path, *overrides):
    config = load_config(TINY, [f"run.output={tmp_path}", *overrides])
    run_dir = str(tmp_path / "run")
    torch.manual_seed(0)
    Workspace(run_dir, config).save_model("target", build_model_for("lenet", (1, 28, 28), 10))
    return config, run_dir


def test_the_oracle_host_exposes_only_the_predictive_interface():
    public = {
        name for name, _ in inspect.getmembers(OracleHost, inspect.isfunction) if not name.startswith("_")
    }
    assert public == {"labels", "noisy_labels", "probabilities", "queries"}
    assert "checkpoint" not in inspect.signature(ProxyHost).parameters  # a proxy is never given a target


def _restarted(actor):
    """Kill `actor` and wait until Ray has restarted it (the restart is asynchronous)."""
    ray.kill(actor, no_restart=False)
    for _ in range(100):
        try:
            ray.get(actor.queries.remote())
            return
        except ray.exceptions.RayActorError:
            pass
    raise AssertionError("the actor did not come back")


@pytest.mark.timeout(180)
def test_oracle_actor_answers_counts_persists_and_keeps_its_budget_across_a_restart(tmp_path, ray_cluster):
    config, run_dir = _run(tmp_path, "proxy.query_budget=35", "proxy.label_noise=0.2")
    oracle = oracle_actor("o1", run_dir, config, "target", "proxy")
    x = torch.rand(10, 1, 28, 28)
    labels = ray.get(oracle.labels.remote(x))
    probabilities = ray.get(oracle.probabilities.remote(x))
    noisy = ray.get(oracle.noisy_labels.remote(x))
    assert labels.shape == (10,) and labels.dtype == torch.int64
    assert torch.allclose(probabilities.sum(1), torch.ones(10), atol=1e-5)
    assert torch.equal(probabilities.argmax(1), labels)
    assert torch.allclose(noisy.max(1).values, torch.full((10,), 0.8 + 0.02)) and torch.equal(
        noisy.argmax(1), labels
    )
    assert ray.get(oracle.queries.remote()) == 30
    count = Path(run_dir) / "oracle" / "proxy.json"
    assert json.loads(count.read_text()) == {"campaign": "proxy", "queries": 30}
    _restarted(oracle)
    assert ray.get(oracle.queries.remote()) == 30
    with pytest.raises(QueryBudgetExceeded, match="campaign 'proxy' exhausted: 30 of 35 used, 10 more asked"):
        ray.get(oracle.labels.remote(x))
    assert ray.get(oracle.queries.remote()) == 30
    ray.kill(oracle)


@pytest.mark.timeout(180)
def test_one_campaign_spends_one_budget_across_checkpoints_and_restarts(tmp_path, ray_cluster):
    """P' queries M0, its re-fit queries stage 1 (another oracle actor): one count, kept through a
    restart of either actor; another attacker's P'' has a budget of its own."""
    config, run_dir = _run(tmp_path, "proxy.query_budget=25")
    torch.manual_seed(1)
    Workspace(run_dir, config).save_model("amc_proxy.1", build_model_for("lenet", (1, 28, 28), 10))
    first = oracle_actor("c1", run_dir, config, "target", "proxy")
    refit = oracle_actor("c1", run_dir, config, "amc_proxy.1", "proxy")
    other = oracle_actor("c1", run_dir, config, "target", "p2.undefended")
    x = torch.rand(10, 1, 28, 28)
    ray.get(first.labels.remote(x))
    _restarted(first)
    ray.get(refit.labels.remote(x))
    assert ray.get(first.queries.remote()) == ray.get(refit.queries.remote()) == 20
    _restarted(refit)
    with pytest.raises(QueryBudgetExceeded, match="campaign 'proxy' exhausted: 20 of 25 used, 10 more asked"):
        ray.get(refit.labels.remote(x))
    with pytest.raises(QueryBudgetExceeded, match="campaign 'proxy' exhausted: 20 of 25 used"):
        ray.get(first.probabilities.remote(x))
    ray.get(other.labels.remote(torch.cat([x, x])))
    assert ray.get(other.queries.remote()) == 20 and ray.get(first.queries.remote()) == 20
    for actor in (first, refit, other):
        ray.kill(actor)


@pytest.mark.timeout(240)
def test_a_proxy_actor_learns_only_through_the_oracle_and_crafts(tmp_path, ray_cluster):
    config, run_dir = _run(tmp_path)
    run_id = "p1"
    hub(str(tmp_path / "hub.json"))  # the proxy's events go to the metrics hub
    oracle = oracle_actor(run_id, run_dir, config, "target", "proxy")
    ray.get(oracle.queries.remote())  # the oracle actor has loaded M0...
    os.remove(Path(run_dir) / "models" / "target.pt")  # ...so the attacker's side cannot read it
    proxy = proxy_actor(run_id, run_dir, config, "proxy.1")
    queries = ray.get(proxy.fit.remote(FitProxy("proxy.1", "target", None, seed=1, campaign="proxy")))
    assert queries == config.proxy.n_samples  # labelled once; agreement is the defender's, measured apart
    assert (Path(run_dir) / "models" / "proxy.1.pt").exists()
    with pytest.raises(ray.exceptions.RayActorError):  # the fit's oracle actor ended with the fit
        ray.get(oracle.queries.remote())
    x = torch.rand(6, 1, 28, 28)
    x_adv = ray.get(proxy.craft.remote("fgsm", x))
    assert x_adv.shape == x.shape and 0 < (x_adv - x).abs().max() <= 0.3 + 1e-6
    ray.kill(proxy)


@pytest.mark.timeout(120)
def test_ending_an_actor_frees_its_name_and_puts_nothing_on_the_console(ray_cluster, capfd):
    """end_actor waits until Ray has the actor dead, and its probe of the dying actor is not retried (the
    actors restart on failure: a retried probe had the raylet print a line per ended actor into the
    launch's tables)."""
    import time

    from amc_dist.distributed.actors import end_actor
    from amc_dist.distributed.cluster import NAMESPACE

    class _Pinger:  # defined here, so it travels by value (the workers cannot import this module)
        def ping(self) -> int:
            return 1

    options = dict(namespace=NAMESPACE, max_restarts=-1, max_task_retries=-1, num_cpus=0)
    for i in range(3):
        actor = ray.remote(_Pinger).options(name=f"pinger-{i}", **options).remote()
        assert ray.get(actor.ping.remote()) == 1
        end_actor(actor)
        with pytest.raises(ValueError):
            ray.get_actor(f"pinger-{i}", namespace=NAMESPACE)  # the name is free for the next step
    time.sleep(2)  # the raylet's messages reach the driver asynchronously
    assert "__ray_ready__" not in capfd.readouterr().err
