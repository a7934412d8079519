"""The one training function: loss weighting, determinism, events, and its torch.distributed seam."""

import copy
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from amc_dist.config import TrainingConfig
from amc_dist.training.trainer import fit, loss_terms


def blobs(n=400, seed=0):
    """Two well separated Gaussian classes as 1x4x4 'images' in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    centre = torch.where(y[:, None] == 1, 0.7, 0.3)
    x = (centre + 0.08 * torch.randn(n, 16, generator=g)).clamp(0, 1)
    return x.reshape(n, 1, 4, 4), y


def linear(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 2))


def sgd(**changes):
    return TrainingConfig(
        **{
            "epochs": 3,
            "batch_size": 32,
            "optimizer": "sgd",
            "momentum": 0.0,
            "learning_rate": 0.5,
            **changes,
        }
    )


def test_learns_and_is_deterministic():
    x, y = blobs()
    a = fit(linear(), x, y, sgd())
    b = fit(linear(), x, y, sgd())
    assert (a(x).argmax(1) == y).float().mean() > 0.97
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    c = fit(linear(), x, y, sgd(), seed=1)
    assert not torch.equal(next(c.parameters()), next(a.parameters()))


def test_uint8_images_train_like_their_float_values():
    x, y = blobs()
    pixels = (x * 255).round().to(torch.uint8)
    a = fit(linear(), pixels, y, sgd())
    b = fit(linear(), pixels.float() / 255, y, sgd())
    assert torch.allclose(next(a.parameters()), next(b.parameters()), atol=1e-6)


def test_loss_is_alpha_clean_plus_lambda_weighted_adversarial_terms():
    x, y = blobs(64)
    model = linear()
    x1, x2 = x.flip(0)[:20], (1 - x)[:10]
    y1, y2 = y.flip(0)[:20], y[:10]
    parts = [(x1, y1, 0.7), (x2, y2, 0.3)]
    got = loss_terms(model, x, y, 0.4, lambda m, xb, yb: parts)
    want = 0.4 * F.cross_entropy(model(x), y) + 0.6 * (
        0.7 * F.cross_entropy(model(x1), y1) + 0.3 * F.cross_entropy(model(x2), y2)
    )
    assert torch.allclose(got, want)
    assert torch.allclose(loss_terms(model, x, y, 0.4, None), F.cross_entropy(model(x), y))


def batchnorm_net(seed=0):
    torch.manual_seed(seed)
    conv = nn.Conv2d(1, 3, 3, padding=1)
    return nn.Sequential(conv, nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 2))


def test_clean_and_adversarial_slices_share_one_batchnorm_forward_pass():
    """As the authors concatenated them: BatchNorm normalises the whole batch and updates its running
    statistics once; each term stays the mean over its own slice."""
    x, y = blobs(40)
    x1, y1 = (1 - x)[:12], y[:12]
    x2, y2 = 0.5 * x.flip(0)[:6], y.flip(0)[:6]
    parts = [(x1, y1, 0.75), (x2, y2, 0.25)]
    model, together, separately = batchnorm_net(), batchnorm_net(), batchnorm_net()

    got = loss_terms(model, x, y, 0.4, lambda m, xb, yb: parts)
    losses = F.cross_entropy(together(torch.cat([x, x1, x2])), torch.cat([y, y1, y2]), reduction="none")
    want = 0.4 * losses[:40].mean() + 0.6 * (0.75 * losses[40:52].mean() + 0.25 * losses[52:].mean())
    assert torch.allclose(got, want)
    bn, bn_together = model[1], together[1]
    assert bn.num_batches_tracked.item() == 1
    assert torch.allclose(bn.running_mean, bn_together.running_mean)
    assert torch.allclose(bn.running_var, bn_together.running_var)

    # one pass per slice (the old way) normalises each slice alone and updates the statistics thrice
    per_slice = 0.4 * F.cross_entropy(separately(x), y) + 0.6 * (
        0.75 * F.cross_entropy(separately(x1), y1) + 0.25 * F.cross_entropy(separately(x2), y2)
    )
    assert not torch.allclose(per_slice, got, atol=1e-4)
    assert separately[1].num_batches_tracked.item() == 3
    assert not torch.allclose(separately[1].running_mean, bn.running_mean, atol=1e-4)


def test_events_describe_the_run():
    x, y = blobs(200)
    events = []
    scores = iter([0.5, 0.25])
    evaluate = lambda m: [{"setting": "clean", "attack": "none", "error_rate": next(scores), "n": 9}]  # noqa: E731
    fit(linear(), x, y, sgd(epochs=2, batch_size=50), evaluate=evaluate, on_event=events.append, stage="s1")
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "stage_started" and kinds[-1] == "stage_finished"
    assert events[0]["total_steps"] == 8 and all(e["stage"] == "s1" for e in events)
    steps = [e["step"] for e in events if e["kind"] == "progress"]
    assert steps == sorted(steps) and steps[-1] == 8
    evals = [e for e in events if e["kind"] == "eval"]
    assert [(e["epoch"], e["error_rate"], e["attack"], e["n"]) for e in evals] == [
        (1, 0.5, "none", 9),
        (2, 0.25, "none", 9),
    ]


def _rank_main(rank, world, store, x, y, out):
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        model = fit(linear(), x, y, sgd(batch_size=16))
        torch.save({k: v.clone() for k, v in model.state_dict().items()}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_with_batch_b_equal_one_process_with_batch_2b(tmp_path):
    """Each rank trains on its [r::world] shard and gradients are averaged: with equal shards that is
    exactly full-batch SGD on the union of the two rank batches."""
    x, y = blobs(256)
    mp.spawn(_rank_main, args=(2, tmp_path / "store", x, y, tmp_path / "w"), nprocs=2, join=True)
    rank0, rank1 = (torch.load(tmp_path / f"w.{r}", weights_only=True) for r in (0, 1))
    single = fit(linear(), x, y, sgd(batch_size=32)).state_dict()
    for key, value in single.items():
        assert torch.equal(rank0[key], rank1[key])
        assert torch.allclose(rank0[key], value, atol=1e-5), key


class MemoryStore:
    def __init__(self):
        self.state = None
        self.saves = 0

    def load(self):
        return self.state

    def save(self, state):
        self.state, self.saves = copy.deepcopy(state), self.saves + 1  # as serialising would


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_a_crash_resumes_after_the_last_complete_epoch_exactly(schedule):
    x, y = blobs()
    settings = sgd(epochs=4, optimizer="adam", learning_rate=0.05, schedule=schedule)
    whole = fit(linear(), x, y, settings)
    store = MemoryStore()

    def crash_in_epoch_3(model):
        if store.saves == 2:
            raise KeyboardInterrupt
        return []

    with pytest.raises(KeyboardInterrupt):
        fit(linear(), x, y, settings, evaluate=crash_in_epoch_3, store=store)
    assert store.state["epoch"] == 2
    events = []
    resumed = fit(
        linear(seed=9), x, y, settings, store=store, on_event=events.append
    )  # weights come from the store
    assert events[0]["step"] == 2 * 13  # 400 images, batch 32: 13 steps an epoch
    for a, b in zip(whole.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
