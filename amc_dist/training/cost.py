"""Training cost in one unit, counted on the model as it runs: a forward+backward pass of one image is 1,
a forward pass alone `FORWARD` (0.3, what `amc bench scaling` counts), so every strategy is charged what
its attacks and its training actually did, the selecting forward passes of MAX and MSD included.

A forward pass whose output needs a gradient is counted as forward+backward: attacks and training run
the backward right after it; evaluation and the selecting passes run without gradients.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator

import torch
from torch import nn

# A forward pass without gradient, as a fraction of a forward+backward (measured on LeNet: 0.24;
# docs/benchmarks.md). Rounded up: larger models keep more of their cost in the forward pass.
FORWARD = 0.3


class CostMeter:
    """Units spent on a model, per account (`train` unless `charged_to` says otherwise)."""

    def __init__(self) -> None:
        self.units: dict[str, float] = defaultdict(float)
        self.account = "train"

    def _count(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        images = inputs[0].shape[0] if inputs and isinstance(inputs[0], torch.Tensor) else 0
        self.units[self.account] += images * (1.0 if output.requires_grad else FORWARD)

    @contextlib.contextmanager
    def counting(self, model: nn.Module) -> Iterator[CostMeter]:
        """Count every forward pass of `model` (its outermost module) while the block runs."""
        handle = model.register_forward_hook(self._count)
        try:
            yield self
        finally:
            handle.remove()

    @contextlib.contextmanager
    def charged_to(self, account: str) -> Iterator[None]:
        """Charge the block's passes to `account` (e.g. the per-epoch collapse check)."""
        previous, self.account = self.account, account
        try:
            yield
        finally:
            self.account = previous

    def total(self) -> float:
        return sum(self.units.values())
