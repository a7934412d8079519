"""What an attack's output is worth: success rate and distortion, alone and against another attack's.

An example counts as turned when the model's prediction on it differs from the label; `distortion_stats`
counts rows with NaN (a peer that broke on them) as failures and reports how many there were.
"""

from __future__ import annotations

import torch
from torch import nn


def distortion_stats(
    model: nn.Module, x: torch.Tensor, adv: torch.Tensor, y: torch.Tensor, box=(0.0, 1.0)
) -> dict:
    """Success rate (label changed) and mean L1/L2/Linf distortion over the successful examples."""
    nan_rows = torch.isnan(adv.flatten(1)).any(1)
    with torch.no_grad():
        success = (model(torch.nan_to_num(adv)).argmax(1) != y) & ~nan_rows
    delta = (adv - x).flatten(1)[success]
    out_of_box = ((adv < box[0]) | (adv > box[1])).flatten(1).any(1) & ~nan_rows

    def mean(values: torch.Tensor) -> float | None:
        return values.mean().item() if len(values) else None

    return {
        "success": success.float().mean().item(),
        "l1": mean(delta.abs().sum(1)),
        "l2": mean(delta.norm(dim=1)),
        "linf": mean(delta.abs().amax(1)) if len(delta) else None,
        "out_of_box": int(out_of_box.sum()),
        "nan_rows": int(nan_rows.sum()),
    }


def shared_l1(
    model: nn.Module, x: torch.Tensor, ours: torch.Tensor, theirs: torch.Tensor, y: torch.Tensor
) -> list[float] | None:
    """Mean L1 distortion, ours and a peer's, over the examples both attacks turned: a fair comparison of
    distortion where the success rates differ (every extra success is a hard example with a large L1)."""
    with torch.no_grad():
        both = (model(ours).argmax(1) != y) & (model(torch.nan_to_num(theirs)).argmax(1) != y)
    if not both.any():
        return None
    return [(adv - x).flatten(1)[both].abs().sum(1).mean().item() for adv in (ours, theirs)]
