"""MAX (Tramer & Boneh 2019): every attack perturbs the whole batch; each example trains on the attack
that hurts it most, chosen by one forward pass of every candidate (charged by the cost meter)."""

from __future__ import annotations

import torch
from torch import nn

from amc_dist.attacks.base import eval_mode, objective
from amc_dist.training.strategies.strategy import Parts, Strategy


def worst_per_example(model: nn.Module, y: torch.Tensor, candidates: list[torch.Tensor]) -> torch.Tensor:
    """Per example, the candidate with the highest cross-entropy (ties: the earlier candidate)."""
    with eval_mode(model):
        losses = torch.stack([objective(model, c, y, targeted=False) for c in candidates])
    pick = losses.argmax(0)
    stacked = torch.stack(candidates)
    return stacked[pick, torch.arange(len(y), device=y.device)]


class Max(Strategy):
    name = "max"

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Parts:
        candidates = [attack(model, x, y) for attack in self.attacks.values()]
        return [(worst_per_example(model, y, candidates), y, 1.0)]
