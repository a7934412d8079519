"""Clean error rate, the paper's Table 2 measure, and the batched prediction every evaluation shares."""

from __future__ import annotations

import torch
from torch import nn

from amc_dist.tensors import to_unit


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Predicted labels in eval mode; the model's mode is restored afterwards."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        return torch.cat(
            [
                model(to_unit(x[i : i + batch_size], device)).argmax(1).cpu()
                for i in range(0, len(x), batch_size)
            ]
        )
    finally:
        model.train(was_training)


def error_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Fraction of misclassified images, in [0, 1]."""
    if len(x) == 0:
        raise ValueError("error_rate needs at least one image")
    return (predict(model, x, batch_size) != y.cpu()).float().mean().item()
