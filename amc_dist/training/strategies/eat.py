"""E-AT (Croce & Hein 2022): each batch trains against ONE threat model, drawn with weight 1 - that
model's running training robust accuracy, so the norm the model is weakest against is trained most.

The robust accuracy of the drawn attack's examples is measured by one forward pass (charged by the cost
meter) and kept as an exponential moving average per threat model, started at its first measurement;
before a threat model has been drawn its accuracy counts as 0, so it is drawn first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from amc_dist.attacks import Attack
from amc_dist.attacks.base import eval_mode
from amc_dist.training.strategies.strategy import Parts, Strategy


class EAT(Strategy):
    name = "eat"

    def __init__(
        self,
        attacks: Mapping[str, Attack],
        *,
        ramp_epochs: int = 0,
        ramp: Iterable[str] | None = None,
        seed: int = 0,
        momentum: float = 0.9,
    ) -> None:
        super().__init__(attacks, ramp_epochs=ramp_epochs, ramp=ramp, seed=seed)
        if not 0 <= momentum < 1:
            raise ValueError(f"eat: momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.robust = dict.fromkeys(self.full, 0.0)
        self.seen: set[str] = set()

    def weights(self) -> dict[str, float]:
        """The sampling weights: 1 - running robust accuracy, normalised (uniform if all are 1)."""
        raw = {name: 1.0 - acc for name, acc in self.robust.items()}
        total = sum(raw.values())
        if total <= 0:
            return dict.fromkeys(raw, 1.0 / len(raw))
        return {name: w / total for name, w in raw.items()}

    def observe(self, name: str, accuracy: float) -> None:
        if name not in self.seen:
            self.seen.add(name)
            self.robust[name] = accuracy
        else:
            self.robust[name] = self.momentum * self.robust[name] + (1 - self.momentum) * accuracy

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Parts:
        names = list(self.attacks)
        weights = torch.tensor([self.weights()[n] for n in names])
        name = names[int(torch.multinomial(weights, 1, generator=self.generator))]
        x_adv = self.attacks[name](model, x, y)
        with eval_mode(model), torch.no_grad():
            self.observe(name, (model(x_adv).argmax(1) == y).float().mean().item())
        return [(x_adv, y, 1.0)]
