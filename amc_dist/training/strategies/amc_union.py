"""amc_union: the paper's cascade stage with the union's threat models as its attacks. Stage k trains on
attacks 1..k of the order (Linf -> L2 -> L1 by default), the newest taking `newest_share` (0.8) of the
perturbed batch and the earlier ones replayed in the rest, each loss weighted by the lambdas; stage k
starts from stage k-1's weights (parameter transfer, `cascade.py`). Unlike the paper's rows, the
attacks use the true labels, as every union strategy does. Only the newest attack is ramped: the
earlier ones were trained at their full budget in their own stage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from amc_dist.attacks import Attack
from amc_dist.training.adversarial import AdversarialMixture
from amc_dist.training.strategies.strategy import Parts, Strategy, is_linf


class AmcUnion(Strategy):
    name = "amc_union"

    def __init__(
        self,
        attacks: Mapping[str, Attack],
        *,
        shares: Sequence[float] | None = None,
        lambdas: Sequence[float] | None = None,
        ramp_epochs: int = 0,
        seed: int = 0,
    ) -> None:
        newest = list(attacks)[-1]
        super().__init__(
            attacks, ramp_epochs=ramp_epochs, ramp=[newest] if is_linf(attacks[newest]) else [], seed=seed
        )
        self.mixture = AdversarialMixture(
            list(self.attacks.values()),
            list(shares) if shares is not None else [1.0 / len(attacks)] * len(attacks),
            lambdas,
            attack_true_labels=True,
            seed=seed,
        )

    def epoch_started(self, epoch: int) -> None:
        super().epoch_started(epoch)
        self.mixture.attacks = list(self.attacks.values())

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Parts:
        return self.mixture(model, x, y)
