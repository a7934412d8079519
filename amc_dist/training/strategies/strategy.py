"""What every union strategy shares: its named training attacks, true labels, and the Linf eps ramp.

Training at the full Linf budget from the first step is how one-step MNIST training collapses (Wong et
al. 2020); ramping eps (and the step size with it) over the first epochs is their remedy, applied here to
every Linf attack a strategy ramps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import ClassVar

import torch
from torch import nn

from amc_dist.attacks import Attack, attack_for

Parts = list[tuple[torch.Tensor, torch.Tensor, float]]


def ramped(attack: Attack, factor: float) -> Attack:
    """The attack with its eps (and eps_iter, where it has one) scaled by `factor`."""
    if factor >= 1:
        return attack
    p = attack.params
    update = {"eps": p.eps * factor} | ({"eps_iter": p.eps_iter * factor} if hasattr(p, "eps_iter") else {})
    return attack_for(p.model_copy(update=update))


def is_linf(attack: Attack) -> bool:
    return math.isinf(getattr(attack.params, "ord", 0.0))


class Strategy:
    """A Perturber `(model, x, y) -> [(x_adv, y, weight)]` over `attacks` ({name: attack}); `fit` calls
    `epoch_started(epoch)` (0-based) before each epoch, which moves the eps ramp of the attacks in `ramp`
    (default: every Linf attack) linearly to their full budget over `ramp_epochs` epochs."""

    name: ClassVar[str]

    def __init__(
        self,
        attacks: Mapping[str, Attack],
        *,
        ramp_epochs: int = 0,
        ramp: Iterable[str] | None = None,
        seed: int = 0,
    ) -> None:
        if not attacks:
            raise ValueError(f"{self.name}: needs at least one training attack")
        self.full = dict(attacks)
        self.ramp_epochs = ramp_epochs
        self.ramped = set(ramp) if ramp is not None else {n for n, a in attacks.items() if is_linf(a)}
        self.generator = torch.Generator().manual_seed(seed)
        self.attacks = self.attacks_at(0)

    def attacks_at(self, epoch: int) -> dict[str, Attack]:
        """The attacks of epoch `epoch` (0-based): those ramped at (epoch + 1) / ramp_epochs of their eps."""
        factor = 1.0 if self.ramp_epochs <= 0 else min(1.0, (epoch + 1) / self.ramp_epochs)
        return {n: ramped(a, factor) if n in self.ramped else a for n, a in self.full.items()}

    def epoch_started(self, epoch: int) -> None:
        self.attacks = self.attacks_at(epoch)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Parts:
        raise NotImplementedError
