"""Every example held to its threat model's budget: a success outside the ball must not count.

An attack bug that leaves the ball would otherwise show up as a weaker model, not as a bug; the count
of replaced examples is kept, so tests can require it to stay zero (a budget bug must not hide as
robustness either: a replaced example reads as a failed attack).
"""

from __future__ import annotations

import torch
from torch import nn

from amc_dist.attacks.base import norm_of, per_sample

# Float rounding of a projection onto the sphere (L1: float64 projection, then float32): relative 1e-5
# and absolute 1e-6, far below any pixel's 1/255.
RELATIVE_SLACK, ABSOLUTE_SLACK = 1e-5, 1e-6


def within(x_adv: torch.Tensor, x: torch.Tensor, ord: float, eps: float) -> torch.Tensor:
    """Per image, whether ||x_adv - x||_ord <= eps up to float rounding."""
    return norm_of(x_adv - x, ord) <= eps * (1 + RELATIVE_SLACK) + ABSOLUTE_SLACK


class WithinBudget:
    """An attack whose examples outside the budget ||x_adv - x||_ord <= eps are replaced by the clean input,
    so the evaluation counts only the successes the threat model allows; `replaced` counts them."""

    def __init__(self, attack, ord: float, eps: float) -> None:
        self.attack, self.ord, self.eps = attack, ord, eps
        self.replaced = 0

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        x_adv = self.attack(model, x, y)
        inside = within(x_adv, x.to(x_adv.device), self.ord, self.eps)
        self.replaced += int((~inside).sum())
        return torch.where(per_sample(inside, x_adv), x_adv, x.to(x_adv.device))
