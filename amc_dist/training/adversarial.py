"""Adversarial training, the paper's Algorithm 1: the perturbed part of every batch, crafted by one or
more attacks, joins the clean batch in the loss alpha*J(x, y) + (1-alpha) * sum_i lambda_i*J(x_adv_i, y).

`AdversarialMixture` is the `Perturber` that `trainer.fit` takes. Each batch it draws the perturbed part
from the batch with replacement (the paper's choice), splits it among the attacks by their shares, and
crafts each slice on the source model: the model being trained (target-hardened) or a fixed proxy
(local proxy). The attacks run in eval mode (they restore the mode), and every adversarial example
keeps the true label of the clean example it came from.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from amc_dist.attacks import Attack
from amc_dist.training.mixture import split_counts, stage_lambdas


class AdversarialMixture:
    def __init__(
        self,
        attacks: Sequence[Attack],
        shares: Sequence[float],
        lambdas: Sequence[float] | None = None,
        *,
        source: nn.Module | None = None,
        perturbed_fraction: float = 1.0,
        attack_true_labels: bool = False,
        seed: int = 0,
    ) -> None:
        """`source=None` crafts on the model being trained; `perturbed_fraction` sizes the perturbed part
        relative to the clean batch (1: equal halves, as the authors ran); `attack_true_labels=False`
        attacks the source's own predictions, as the authors' Cleverhans code did."""
        if len(attacks) != len(shares) or not attacks:
            raise ValueError(
                f"need one share per attack, got {len(shares)} shares for {len(attacks)} attacks"
            )
        if perturbed_fraction <= 0:
            raise ValueError(f"perturbed_fraction must be positive, got {perturbed_fraction}")
        self.attacks = list(attacks)
        self.shares = list(shares)
        self.lambdas = None if lambdas is None else list(lambdas)
        self.source = source
        self.perturbed_fraction = perturbed_fraction
        self.attack_true_labels = attack_true_labels
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
        n = max(1, round(self.perturbed_fraction * len(x)))
        picks = torch.randint(len(x), (n,), generator=self.generator).to(x.device)
        counts = split_counts(n, self.shares)
        weights = stage_lambdas(len(self.attacks), counts, self.lambdas)
        crafting = self.source if self.source is not None else model
        parts, start = [], 0
        for attack, count, weight in zip(self.attacks, counts, weights, strict=True):
            chosen = picks[start : start + count]
            start += count
            if count == 0:
                continue
            labels = y[chosen] if self.attack_true_labels else None
            parts.append((attack(crafting, x[chosen], labels), y[chosen], weight))
        return parts
