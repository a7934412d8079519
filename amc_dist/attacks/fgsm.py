"""FGSM (Goodfellow et al. 2015): one step of size eps along the sign (or L2 direction) of the loss gradient.

The paper's "F". With y=None the labels come from the same forward pass that gives the gradient, so the
attack costs exactly one forward+backward pass per example.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from amc_dist.attacks.base import Attack, NormParams, loss_gradient, steepest_direction


class FGSMParams(NormParams):
    # Defaults: what the paper's authors ran on SVHN/CIFAR-10 (MNIST used eps=0.3).
    eps: float = Field(0.1, ge=0, description="the step, and so the budget, in the norm `ord`")
    targeted: bool = Field(False, description="move towards the given labels instead of away from them")


class FGSM(Attack):
    name = "fgsm"
    Params = FGSMParams

    def _perturb(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, noise: torch.Tensor | None
    ) -> torch.Tensor:
        p = self.params
        grad, _ = loss_gradient(model, x, y, p.targeted)
        return self._clip(x + p.eps * steepest_direction(grad, p.ord))
