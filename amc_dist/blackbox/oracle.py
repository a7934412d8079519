"""The oracle: the target model seen only through its predictive interface, as the black-box attacker
sees it (paper section 5.2). It answers one of three interfaces and charges every image it is asked about
to the attacker's campaign (`budget.py`): the count is the attacker's, not the oracle's.

- `label`: the top label only;
- `noisy_label`: the top label as a smoothed one-hot vector (label noise approximating distillation);
- `probability`: the full vector of class probabilities.

`Oracle` is the interface a remote actor implements unchanged; `ModelOracle` serves an in-process model.
"""

from __future__ import annotations

from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from amc_dist.blackbox.budget import QueryBudgetExceeded, QueryLedger
from amc_dist.tensors import PREDICT_BATCH, batch_for, module_device, to_unit

__all__ = ["INTERFACES", "ModelOracle", "Oracle", "QueryBudgetExceeded", "QueryLedger", "ask"]

Interface = Literal["label", "noisy_label", "probability"]
INTERFACES: tuple[Interface, ...] = ("label", "noisy_label", "probability")


class Oracle(Protocol):
    """Methods only (no properties), so a Ray actor handle can stand behind the same interface."""

    def queries(self) -> int:
        """Images the attacker's campaign has had answered so far (by every oracle it queried)."""

    def labels(self, x: torch.Tensor) -> torch.Tensor:
        """Top labels, int64 N."""

    def noisy_labels(self, x: torch.Tensor) -> torch.Tensor:
        """Smoothed one-hot top labels, float N x K."""

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities, float N x K."""


def ask(oracle: Oracle, x: torch.Tensor, interface: Interface) -> torch.Tensor:
    """The oracle's answer on one interface: int64 labels, or N x K float targets."""
    if interface not in INTERFACES:
        raise ValueError(f"unknown oracle interface {interface!r}; expected one of {', '.join(INTERFACES)}")
    return {"label": oracle.labels, "noisy_label": oracle.noisy_labels, "probability": oracle.probabilities}[
        interface
    ](x)


class ModelOracle:
    """Answers from a model held in this process (images as uint8 or floats in [0, 1])."""

    def __init__(
        self,
        model: nn.Module,
        label_noise: float = 0.1,
        ledger: QueryLedger | None = None,
        batch_size: int | None = None,
    ) -> None:
        """`ledger`: the campaign the answers are charged to (default: this oracle's own, unlimited)."""
        if not 0 <= label_noise < 1:
            raise ValueError(f"label_noise must lie in [0, 1), got {label_noise}")
        self._model = model
        self.label_noise = label_noise
        self.ledger = ledger if ledger is not None else QueryLedger()
        self.batch_size = batch_size

    def queries(self) -> int:
        return self.ledger.spent()

    @torch.no_grad()
    def _probabilities(self, x: torch.Tensor) -> torch.Tensor:
        self.ledger.charge(len(x))
        was_training = self._model.training
        self._model.eval()
        device = module_device(self._model)
        batch = self.batch_size or batch_for(device, **PREDICT_BATCH)
        try:
            return torch.cat(
                [
                    F.softmax(self._model(to_unit(x[i : i + batch], device)), dim=1).cpu()
                    for i in range(0, len(x), batch)
                ]
            )
        finally:
            self._model.train(was_training)

    def labels(self, x: torch.Tensor) -> torch.Tensor:
        return self._probabilities(x).argmax(1)

    def noisy_labels(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = self._probabilities(x)
        classes = probabilities.shape[1]
        one_hot = F.one_hot(probabilities.argmax(1), classes).float()
        return one_hot * (1 - self.label_noise) + self.label_noise / classes

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return self._probabilities(x)
