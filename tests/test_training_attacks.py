"""Training attacks return each sample's highest-loss point (not the first that fools, nor the last)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from amc_dist.attacks import build_attack


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()


def losses(model, x, y):
    with torch.no_grad():
        return F.cross_entropy(model(x), y, reduction="none")


def test_pgd_keep_best_returns_the_highest_loss_iterate_inside_its_ball():
    model, gen = tiny_model(), torch.Generator().manual_seed(1)
    x, y = torch.rand(40, 1, 8, 8, generator=gen), torch.randint(10, (40,), generator=gen)
    for ord, eps, step in ((math.inf, 0.3, 0.2), (2.0, 2.0, 1.5)):  # big steps: the loss goes up and down
        kwargs = {"ord": ord, "eps": eps, "eps_iter": step, "seed": 3}
        iterates = [build_attack("pgd", nb_iter=k, **kwargs)(model, x, y) for k in range(1, 7)]
        best = build_attack("pgd", nb_iter=6, keep_best=True, **kwargs)(model, x, y)
        assert torch.equal(build_attack("pgd", nb_iter=6, **kwargs)(model, x, y), iterates[-1])  # unchanged
        per_iterate = torch.stack([losses(model, it, y) for it in iterates])
        assert (losses(model, best, y) >= per_iterate.amax(0) - 1e-6).all()
        assert (losses(model, best, y) > per_iterate[-1] + 1e-4).any()  # the last is not always the best
        distance = torch.linalg.vector_norm((best - x).flatten(1), ord=ord, dim=1)
        assert (distance <= eps * (1 + 1e-5)).all() and best.min() >= 0 and best.max() <= 1


def test_apgd_without_early_stop_returns_the_highest_loss_point_for_every_norm():
    """Evaluation's APGD stops a sample at its first fooling point; training's (early_stop False) runs on
    and keeps the highest-loss point, inputs already misclassified included, inside ball and box."""
    model, gen = tiny_model(), torch.Generator().manual_seed(2)
    x, y = torch.rand(40, 1, 8, 8, generator=gen), torch.randint(10, (40,), generator=gen)
    for ord, eps in ((math.inf, 0.1), (2.0, 0.5), (1.0, 2.0)):
        kwargs = {"ord": ord, "eps": eps, "n_iter": 12, "seed": 0}
        first = build_attack("apgd", **kwargs)(model, x, y)
        best = build_attack("apgd", early_stop=False, **kwargs)(model, x, y)
        assert (losses(model, best, y) >= losses(model, first, y) - 1e-5).all()
        assert (losses(model, best, y) > losses(model, first, y) + 1e-3).any()
        assert (losses(model, best, y) > losses(model, x, y)).all()  # misclassified inputs are attacked too
        distance = torch.linalg.vector_norm((best - x).flatten(1), ord=ord, dim=1)
        assert (distance <= eps * (1 + 1e-4)).all() and best.min() >= 0 and best.max() <= 1
