"""The union strategies' behaviour on a tiny model: AVG averages, MAX takes each example's worst, MSD's
candidate is the highest-loss one and stays in its own ball, E-AT samples by 1 - robust accuracy, the
eps ramp reaches the full budget, and the cost meter adds the passes up."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from amc_dist.attacks import build_attack
from amc_dist.config import TrainingConfig
from amc_dist.training.cost import FORWARD, CostMeter
from amc_dist.training.strategies import EAT, MSD, AmcUnion, Avg, Max
from amc_dist.training.strategies.msd import msd_step
from amc_dist.training.trainer import fit, loss_terms


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(1)
    return torch.rand(32, 1, 8, 8, generator=gen), torch.randint(10, (32,), generator=gen)


def pgd(ord, eps, step, n=3):
    return build_attack("pgd", ord=ord, eps=eps, eps_iter=step, nb_iter=n, seed=0, keep_best=True)


def attacks():
    return {"pgd_linf": pgd(math.inf, 0.3, 0.1), "pgd_l2": pgd(2.0, 2.0, 0.7)}


def ce(model, x, y):
    with torch.no_grad():
        return F.cross_entropy(model(x), y, reduction="none")


def norm(x_adv, x, ord):
    return torch.linalg.vector_norm((x_adv - x).flatten(1), ord=ord, dim=1)


def test_avg_trains_on_every_attack_with_equal_weights(batch):
    x, y = batch
    model = tiny_model()
    parts = Avg(attacks())(model, x, y)
    assert [w for _, _, w in parts] == [0.5, 0.5]
    expected = [a(model, x, y) for a in attacks().values()]
    assert all(torch.equal(p[0], e) and torch.equal(p[1], y) for p, e in zip(parts, expected, strict=True))
    # the loss is the mean of the two attacks' mean losses (alpha 0: no clean term)
    loss = loss_terms(model.eval(), x, y, 0.0, lambda *_: parts)
    assert torch.isclose(loss, (ce(model, expected[0], y).mean() + ce(model, expected[1], y).mean()) / 2)


def test_max_takes_each_examples_worst_attack(batch):
    x, y = batch
    model = tiny_model()
    ((worst, labels, weight),) = Max(attacks())(model, x, y)
    candidates = [a(model, x, y) for a in attacks().values()]
    losses = torch.stack([ce(model, c, y) for c in candidates])
    assert weight == 1.0 and torch.equal(labels, y)
    assert torch.allclose(ce(model, worst, y), losses.amax(0))
    assert (losses.argmax(0) == 0).any() and (losses.argmax(0) == 1).any()  # both attacks get picked


def test_msd_keeps_the_highest_loss_candidate_each_inside_its_own_ball(batch):
    x, y = batch
    model = tiny_model().eval()
    norms = [a.params for a in attacks().values()]
    point = x.clone()
    for _ in range(3):
        point.requires_grad_(True)
        grad = torch.autograd.grad(F.cross_entropy(model(point), y, reduction="sum"), point)[0]
        point = point.detach()
        chosen, chosen_loss = msd_step(model, x, y, point, grad, norms)
        inside = torch.stack([norm(chosen, x, p.ord) <= p.eps * (1 + 1e-5) for p in norms]).any(0)
        assert inside.all() and chosen.min() >= 0 and chosen.max() <= 1
        singles = []
        for p in norms:  # each norm's own candidate, by hand
            step = grad.sign() if math.isinf(p.ord) else grad / norm(grad, 0, 2).view(-1, 1, 1, 1)
            delta = point + p.eps_iter * step - x
            delta = (
                delta.clamp(-p.eps, p.eps)
                if math.isinf(p.ord)
                else delta * torch.clamp(p.eps / norm(delta, 0, 2), max=1).view(-1, 1, 1, 1)
            )
            singles.append(ce(model, (x + delta).clamp(0, 1), y))
        assert torch.allclose(chosen_loss, torch.stack(singles).amax(0), atol=1e-5)
        point = chosen
    ((x_adv, _, _),) = MSD(attacks())(model, x, y)
    assert (ce(model, x_adv, y) >= ce(model, x, y) - 1e-6).all()  # the clean start is a candidate too
    with pytest.raises(ValueError, match="not PGD"):
        MSD({"apgd": build_attack("apgd")})


def test_eat_draws_each_threat_model_by_one_minus_its_robust_accuracy(batch):
    strategy = EAT(attacks(), seed=0)
    assert strategy.weights() == {"pgd_linf": 0.5, "pgd_l2": 0.5}
    strategy.observe("pgd_linf", 0.8)
    strategy.observe("pgd_l2", 0.4)
    assert strategy.weights() == pytest.approx({"pgd_linf": 0.2 / 0.8, "pgd_l2": 0.6 / 0.8})
    strategy.observe("pgd_l2", 0.0)  # a moving average with momentum 0.9
    assert strategy.robust["pgd_l2"] == pytest.approx(0.36)
    x, y = batch
    draws = {"pgd_linf": 0, "pgd_l2": 0}

    def counted(name):
        def attack(model, x, y):
            draws[name] += 1
            return x

        return attack

    strategy.attacks = {name: counted(name) for name in strategy.attacks}
    strategy.momentum = 0.0
    for _ in range(110):
        strategy.robust = {"pgd_linf": 0.9, "pgd_l2": 0.0}  # weights 1/11 and 10/11
        strategy(tiny_model(), x[:2], y[:2])
    assert 1 <= draws["pgd_linf"] <= 25  # expected 10; binomial(110, 1/11) exceeds 25 with p < 1e-4


def test_the_linf_eps_ramp_reaches_the_full_budget():
    strategy = Avg(attacks(), ramp_epochs=2)
    assert strategy.attacks["pgd_linf"].params.eps == pytest.approx(0.15)
    assert strategy.attacks["pgd_linf"].params.eps_iter == pytest.approx(0.05)
    assert strategy.attacks["pgd_l2"].params.eps == 2.0  # only Linf is ramped
    strategy.epoch_started(1)
    assert strategy.attacks["pgd_linf"] is strategy.full["pgd_linf"]
    cascade = AmcUnion({"pgd_l2": pgd(2.0, 2.0, 0.7), "pgd_linf": pgd(math.inf, 0.3, 0.1)},
                       shares=[0.2, 0.8], ramp_epochs=2)  # fmt: skip
    assert cascade.mixture.attacks[1].params.eps == pytest.approx(0.15)  # the newest ramps


def test_the_meter_charges_what_training_did(batch):
    """One epoch of MAX on 32 images in batches of 16: each PGD runs 3 gradients plus one scoring forward
    (keep_best), MAX scores both candidates, training is one forward+backward of the adversarial batch;
    the per-epoch check (a clean forward) goes to its own account."""
    x, y = batch
    model, meter = tiny_model(), CostMeter()
    settings = TrainingConfig(epochs=1, batch_size=16, alpha=0.0)
    with meter.counting(model):
        fit(model, x, y, settings, perturb=Max(attacks()), meter=meter,
            evaluate=lambda m: [{"n": len(ce(m, x, y))}])  # fmt: skip
    per_image = 2 * (3 + FORWARD) + 2 * FORWARD + 1
    assert meter.units["train"] == pytest.approx(32 * per_image)
    assert meter.units["check"] == pytest.approx(32 * FORWARD)
