"""PGD, Madry et al. 2018 (the paper's "PGM"): random start, then nb_iter steps of ascend, project, clip.
It returns the last iterate (the paper's) or, with `keep_best` (training), each sample's highest-loss one.

The authors never set `eps_iter`, so Cleverhans' default 0.01 applied: their PGM moves at most
nb_iter * 0.01 from its random start, far less than eps. That default is kept to reproduce them, with a
warning, since a standard strong PGD uses eps_iter * nb_iter >= eps.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import nn

from amc_dist.attacks.base import (
    Attack,
    NormParams,
    RandomParams,
    keep_higher,
    l2_normalize,
    objective,
    objective_gradient,
    per_sample,
    predict_labels,
    project_box,
    random_like,
    steepest_direction,
)


class PGDParams(NormParams, RandomParams):
    # Defaults: what the paper's authors ran on SVHN/CIFAR-10 (MNIST: eps=0.3, nb_iter=15).
    eps: float = Field(0.1, ge=0, description="radius of the ball the perturbation stays in (norm `ord`)")
    eps_iter: float = Field(
        0.01, gt=0, description="step size; the authors never set it, so Cleverhans' 0.01 applied"
    )
    nb_iter: int = Field(5, ge=1, description="number of steps")
    rand_init: bool = Field(True, description="start from a uniform random point of the eps-ball")
    targeted: bool = Field(False, description="move towards the given labels instead of away from them")
    keep_best: bool = Field(
        False,
        description="return each sample's highest-loss iterate, not the last (training wants the hardest "
        "point; one more forward pass scores the last step)",
    )

    def advice(self) -> list[str]:
        if self.eps_iter * self.nb_iter >= self.eps:
            return []
        return [
            f"eps_iter * nb_iter = {self.eps_iter * self.nb_iter:g} < eps = {self.eps:g}: the attack cannot "
            "reach the edge of its eps-ball from the clean input (the paper's PGM setting)"
        ]


class PGD(Attack):
    name = "pgd"
    Params = PGDParams

    def _noise(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor | None:
        """The random start: uniform in the Linf box [-eps, eps] (Cleverhans), or uniform in the L2 or L1
        ball (a direction uniform on its sphere, at radius eps * u^(1/d))."""
        p = self.params
        if not p.rand_init:
            return None
        if math.isinf(p.ord):
            return (2 * random_like(x, generator, normal=False) - 1) * p.eps
        if p.ord == 2:
            direction = l2_normalize(random_like(x, generator, normal=True))
        else:  # Laplace entries, normalised: uniform on the L1 sphere
            laplace = (
                -torch.log1p(-random_like(x, generator, normal=False))
                * random_like(x, generator, True).sign()
            )
            direction = laplace / per_sample(laplace.abs().flatten(1).sum(1).clamp_min(1e-12), x)
        radius = p.eps * random_like(x, generator, normal=False, shape=(len(x),)) ** (1 / x[0].numel())
        return direction * per_sample(radius, x)

    def _perturb(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, noise: torch.Tensor | None
    ) -> torch.Tensor:
        p = self.params
        if noise is None:
            adv = x  # the first step's forward pass then also gives the labels when y is None
        else:
            if y is None:
                y = predict_labels(model, x, len(x))
            adv = self._clip(x + noise)
        best = best_value = None
        for _ in range(p.nb_iter):
            grad, y, value = objective_gradient(model, adv, y, p.targeted)
            if p.keep_best:
                best, best_value = keep_higher(best, best_value, adv, value)
            step = adv + p.eps_iter * steepest_direction(grad, p.ord)
            adv = project_box(x, step, p.eps, p.ord, p.clip_min, p.clip_max)
        if not p.keep_best:
            return adv
        return keep_higher(best, best_value, adv, objective(model, adv, y, p.targeted))[0]
