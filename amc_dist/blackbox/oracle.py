"""The oracle: the target model seen only through its predictive interface, as the black-box attacker
sees it (paper section 5.2). It answers one of three interfaces and counts every image it is asked about.

- `label`: the top label only;
- `noisy_label`: the top label as a smoothed one-hot vector (label noise approximating distillation);
- `probability`: the full vector of class probabilities.

`Oracle` is the interface a remote actor implements unchanged; `ModelOracle` serves an in-process model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from amc_dist.tensors import to_unit

Interface = Literal["label", "noisy_label", "probability"]
INTERFACES: tuple[Interface, ...] = ("label", "noisy_label", "probability")


class QueryBudgetExceeded(RuntimeError):
    """Raised before answering a query that would exceed the oracle's budget."""


class Oracle(Protocol):
    """Methods only (no properties), so a Ray actor handle can stand behind the same interface."""

    def queries(self) -> int:
        """Images answered so far."""

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
        query_budget: int | None = None,
        batch_size: int = 500,
        *,
        queries: int = 0,
        record: Callable[[int], None] | None = None,
    ) -> None:
        """`queries` answered before (a restarted host's persisted count); `record(total)` is called
        with the new count before an answer leaves, so a host that dies can only over-count."""
        if not 0 <= label_noise < 1:
            raise ValueError(f"label_noise must lie in [0, 1), got {label_noise}")
        if query_budget is not None and query_budget < 1:
            raise ValueError(f"query_budget must be positive or None, got {query_budget}")
        self._model = model
        self.label_noise = label_noise
        self.query_budget = query_budget
        self.batch_size = batch_size
        self._queries = queries
        self._record = record

    def queries(self) -> int:
        return self._queries

    @torch.no_grad()
    def _probabilities(self, x: torch.Tensor) -> torch.Tensor:
        if self.query_budget is not None and self._queries + len(x) > self.query_budget:
            raise QueryBudgetExceeded(
                f"query budget exhausted: {self._queries} of {self.query_budget} used, {len(x)} more asked"
            )
        if self._record is not None:
            self._record(self._queries + len(x))
        was_training = self._model.training
        self._model.eval()
        device = next(self._model.parameters()).device
        try:
            out = torch.cat(
                [
                    F.softmax(self._model(to_unit(x[i : i + self.batch_size], device)), dim=1).cpu()
                    for i in range(0, len(x), self.batch_size)
                ]
            )
        finally:
            self._model.train(was_training)
        self._queries += len(x)
        return out

    def labels(self, x: torch.Tensor) -> torch.Tensor:
        return self._probabilities(x).argmax(1)

    def noisy_labels(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = self._probabilities(x)
        classes = probabilities.shape[1]
        one_hot = F.one_hot(probabilities.argmax(1), classes).float()
        return one_hot * (1 - self.label_noise) + self.label_noise / classes

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return self._probabilities(x)
