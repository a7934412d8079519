"""The CUDA paths' hazards, checked on the CPU: attacks work where their model is, a slice sent to an
actor travels without the rest of its tensor, Train ranks above 0 work for their run, configs that would
hand a GPU step the wrong device fail at load, and the launch's GPU admission check."""

import pickle
from pathlib import Path

import pytest
import ray
import torch
from torch import nn

from amc_dist.attacks import build_attack
from amc_dist.config import ConfigError, load_config
from amc_dist.distributed.actors import RemoteOracle
from amc_dist.distributed.admission import cards_needed, check_gpus
from amc_dist.experiment.plan import build_graph

TINY = Path(__file__).parent / "configs" / "tiny.yaml"
ATTACKS = {
    "fgsm": {"eps": 0.3},
    "pgd": {"eps": 0.3, "nb_iter": 3, "eps_iter": 0.1},
    "vat": {"xi": 1.0, "num_iterations": 1, "eps": 5.0},
    "ead": {"binary_search_steps": 1, "max_iterations": 3, "initial_const": 1e-2},
    "apgd": {"n_iter": 3, "eps": 0.3},
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_an_attack_moves_its_inputs_to_where_its_model_is(name):
    """The proxy actor hands its (CUDA) proxy CPU images; here a float64 model is handed float32 images,
    the same mismatch on a CPU: the attack must run where the model is, as if given its inputs there."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 5), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 24 * 24, 10)).double()
    x, y = torch.rand(6, 1, 28, 28), torch.randint(0, 10, (6,))
    attack = build_attack(name, **ATTACKS[name])
    moved = attack(model, x, y, generator=torch.Generator().manual_seed(1))
    given = attack(model, x.double(), y, generator=torch.Generator().manual_seed(1))
    assert moved.dtype == torch.float64 and moved.shape == x.shape
    assert torch.equal(moved, given)


class _Method:
    """An actor method stand-in: records the pickled size of each call's arguments, answers at once."""

    def __init__(self, answer):
        self.sizes, self.answer = [], answer

    def remote(self, *args):
        self.sizes.append(len(pickle.dumps(args)))
        return self.answer(*args)


def test_an_oracle_query_pickles_its_own_rows_only(monkeypatch):
    monkeypatch.setattr(ray, "get", lambda value, **_: value)
    images = torch.zeros(20_000, 1, 28, 28, dtype=torch.uint8)  # 15.7 MB
    labels = _Method(lambda x: torch.zeros(len(x), dtype=torch.int64))

    class Handle:
        pass

    handle = Handle()
    handle.labels = labels
    oracle = RemoteOracle(handle, chunk=10)
    assert len(oracle.labels(images[5_000:5_030])) == 30
    row_bytes = 28 * 28
    assert len(labels.sizes) == 3 and max(labels.sizes) < 10 * row_bytes + 2_000, labels.sizes


def test_crafting_on_the_proxy_actor_pickles_its_own_rows_only(monkeypatch, tmp_path):
    from amc_dist.distributed import actors
    from amc_dist.distributed.context import ray_context

    monkeypatch.setattr(ray, "get", lambda value, **_: value)
    craft = _Method(lambda attack, x, y: x.float())

    class Proxy:
        pass

    proxy = Proxy()
    proxy.craft = craft
    monkeypatch.setattr(actors, "proxy_actor", lambda *args: proxy)
    config = load_config(TINY, [f"run.output={tmp_path}"])
    ctx = ray_context(str(tmp_path / "run"), config, None)
    _, attacks = ctx.proxy_attacks("p2.undefended")
    block = torch.rand(20_000, 1, 28, 28)[100:110]  # a view into 62.7 MB
    assert attacks["fgsm"](None, block).shape == block.shape
    assert craft.sizes[0] < 10 * 28 * 28 * 4 + 2_000, craft.sizes
    ctx._actors.clear()  # nothing to end: the proxy was a stand-in


def test_train_ranks_above_0_work_for_their_run_and_only_rank_0_reports(monkeypatch):
    """A rank that needs an actor must reach its run's (`<run_id>/...`), never a stray `None/...` shared
    by every run."""
    from amc_dist.distributed import stage

    made = []

    class Context:
        def flush(self):
            pass

        def close(self):
            pass

    def ray_context(run_dir, config, run_id, events=True):
        made.append((run_id, events))
        return Context()

    class Step:
        def fit(self, ctx, store):
            return None

    monkeypatch.setattr(stage, "ray_context", ray_context)
    for rank in (0, 1, 3):
        monkeypatch.setattr(stage.ray.train, "get_context", lambda rank=rank: _Rank(rank))
        stage._train_loop({"run_dir": "/r", "config": None, "run_id": "run7", "step": Step()})
    assert made == [("run7", True), ("run7", False), ("run7", False)]


class _Rank:
    def __init__(self, rank):
        self.rank = rank

    def get_world_rank(self):
        return self.rank


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["ray.use_gpu=true", "run.device=cpu"], "ray.use_gpu is true but run.device is cpu"),
        (
            ["ray.use_gpu=true", "run.device=cuda:1"],
            "run.device cuda:1 with ray.use_gpu: a Ray step sees only",
        ),
        (["run.device=gpu"], "run.device: String should match pattern"),
    ],
)
def test_a_device_a_gpu_step_cannot_use_fails_at_load(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(TINY, overrides)


def test_devices_a_gpu_step_can_use_load():
    for device in ("auto", "cuda", "cuda:0"):
        assert load_config(TINY, ["ray.use_gpu=true", f"run.device={device}"]).run.device == device
    assert load_config(TINY, ["run.device=cuda:3"]).run.device == "cuda:3"  # `amc run`: any card


def _check(overrides, node_gpus, cap):
    config = load_config(TINY, overrides)
    graph = build_graph(config)
    check_gpus(config, graph, list(graph.steps), node_gpus, cap)


def test_cards_are_counted_for_whole_and_shared_shares():
    assert cards_needed([]) == 0
    assert cards_needed([1.0, 1.0, 0.25, 0.25]) == 3
    assert cards_needed([0.5] * 6 + [0.1] * 6) == 4
    assert cards_needed([0.2, 0.05] * 2) == 1


def test_the_admission_check_refuses_shares_that_cannot_be_held_at_once_with_the_numbers():
    with pytest.raises(ConfigError) as refused:
        _check(["ray.use_gpu=true"], [1.0], cap=2)
    message = str(refused.value)
    assert "up to 2 black-box evaluations, each holding 1 GPU (ray.gpus_per_worker)" in message
    assert (
        "proxy actor asks 0.25 (ray.actor_gpus)" in message
        and "need 3 whole cards, the cluster has 1" in message
    )
    # the same shares on three cards fit; so do small shares on one, or actors on the CPU
    _check(["ray.use_gpu=true"], [0.0, 1.0, 2.0], cap=2)
    _check(["ray.use_gpu=true", "ray.gpus_per_worker=0.2", "ray.actor_gpus=0.05"], [1.0], cap=2)
    _check(["ray.use_gpu=true", "ray.actor_gpus=0"], [1.0], cap=8)
    # only proxy fits hold and wait once the black-box evaluations take their part of the cap
    with pytest.raises(ConfigError, match="1 proxy fits, each a proxy actor holding 0.5 GPU"):
        _check(["ray.use_gpu=true", "ray.gpus_per_worker=0.5", "ray.actor_gpus=0.5"], [1.0], cap=3)


def test_the_admission_check_refuses_what_no_cluster_state_could_run():
    with pytest.raises(ConfigError, match=r"has no GPUs: set ray.use_gpu=false"):
        _check(["ray.use_gpu=true"], [0.0, 0.0], cap=2)
    with pytest.raises(ConfigError, match="2 Train workers .* each need a GPU of their own, but the cluster"):
        _check(["ray.use_gpu=true", "ray.num_workers=2", "ray.trainer=train"], [1.0], cap=2)
    with pytest.raises(ConfigError, match="run.device is cuda but ray.use_gpu is false"):
        _check(["run.device=cuda"], [1.0], cap=2)
    _check([], [0.0], cap=2)  # a CPU run asks nothing of GPUs
