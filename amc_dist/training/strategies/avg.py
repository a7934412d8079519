"""AVG (Tramer & Boneh 2019): every attack perturbs the whole batch; the loss averages their losses."""

from __future__ import annotations

import torch
from torch import nn

from amc_dist.training.strategies.strategy import Parts, Strategy


class Avg(Strategy):
    name = "avg"

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Parts:
        weight = 1.0 / len(self.attacks)
        return [(attack(model, x, y), y, weight) for attack in self.attacks.values()]
