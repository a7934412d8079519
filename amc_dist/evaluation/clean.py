"""Clean error rate, the paper's Table 2 measure, and the batched prediction every evaluation shares."""

from __future__ import annotations

import torch
from torch import nn

from amc_dist.tensors import PREDICT_BATCH, batch_for, module_device, to_unit


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """Predicted labels in eval mode (in batches of `batch_size`, default by the model's device); the
    model's mode is restored afterwards."""
    was_training = model.training
    model.eval()
    device = module_device(model)
    batch_size = batch_size or batch_for(device, **PREDICT_BATCH)
    try:
        return torch.cat(
            [
                model(to_unit(x[i : i + batch_size], device)).argmax(1).cpu()
                for i in range(0, len(x), batch_size)
            ]
        )
    finally:
        model.train(was_training)


def error_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int | None = None) -> float:
    """Fraction of misclassified images, in [0, 1]."""
    if len(x) == 0:
        raise ValueError("error_rate needs at least one image")
    return (predict(model, x, batch_size) != y.cpu()).float().mean().item()
