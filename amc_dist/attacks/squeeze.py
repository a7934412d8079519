"""Feature squeezing (Xu, Evans and Qi 2018): bit-depth reduction and median smoothing, as model wrappers.

The paper evaluates AMC models behind a squeezer (its Table 5). A squeezer with a zero or useless
gradient (rounding) makes gradient attacks fail without making the model robust, so every squeezed model
can also be attacked through BPDA (Athalye et al. 2018): the squeezer in the forward pass, the identity
in the backward pass. A result is a defence only if it survives the BPDA attack too.

Inputs are images in [0, 1]. The authors' 8-bit squeezer is nearly a no-op on 8-bit images, so the bit
depth and the median window are both explicit here, and `describe()` says which were used.
"""

from __future__ import annotations

import torch
from torch import nn


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}-{high}, got {value!r}")
    return value


class BitDepth(nn.Module):
    """Reduce to `bits` bits per value: round(x * (2^bits - 1)) / (2^bits - 1)."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.bits = _check_int("bits (bit_depth)", bits, 1, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = 2**self.bits - 1
        return torch.round(x * levels) / levels

    def describe(self) -> str:
        return f"bit_depth={self.bits}"


def _reflect_index(size: int, before: int, after: int, device: torch.device) -> torch.Tensor:
    """Indices that pad an axis as scipy.ndimage's 'reflect' mode does (d c b a | a b c d | d c b a)."""
    index = torch.arange(-before, size + after, device=device) % (2 * size)
    return torch.where(index >= size, 2 * size - 1 - index, index)


class MedianSmoothing(nn.Module):
    """A window x window median over each channel, equal to scipy.ndimage.median_filter with its defaults.

    scipy's conventions, kept exactly: 'reflect' padding; an even window reaches one pixel further back
    than forward (its centre is at window // 2); an even count takes the upper of the two middle values.
    """

    def __init__(self, window: int) -> None:
        super().__init__()
        self.window = _check_int("window (median_window)", window, 2, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.window
        before, after = w // 2, w - 1 - w // 2
        height, width = x.shape[-2:]
        padded = x.index_select(-2, _reflect_index(height, before, after, x.device))
        padded = padded.index_select(-1, _reflect_index(width, before, after, x.device))
        patches = padded.unfold(-2, w, 1).unfold(-2, w, 1).flatten(-2)
        return patches.kthvalue(w * w // 2 + 1, dim=-1).values

    def describe(self) -> str:
        return f"median_window={self.window}"


class Squeezer(nn.Sequential):
    """Squeezing steps applied in the given order."""

    def describe(self) -> str:
        return ", ".join(step.describe() for step in self) or "none"


def build_squeezer(bit_depth: int | None = None, median_window: int | None = None) -> Squeezer:
    """The config's squeezer: bit-depth reduction, then median smoothing; either may be None (left out)."""
    steps: list[nn.Module] = []
    if bit_depth is not None:
        steps.append(BitDepth(bit_depth))
    if median_window is not None:
        steps.append(MedianSmoothing(median_window))
    return Squeezer(*steps)


class _StraightThrough(torch.autograd.Function):
    """Forward: the squeezer, exactly. Backward: the identity (BPDA's straight-through estimator)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, squeezer: nn.Module) -> torch.Tensor:  # type: ignore[override]
        return squeezer(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad, None


class SqueezedModel(nn.Module):
    """model(squeezer(x)); with bpda=True gradients pass the squeezer as if it were the identity."""

    def __init__(self, model: nn.Module, squeezer: nn.Module, bpda: bool = False) -> None:
        super().__init__()
        self.model = model
        self.squeezer = squeezer
        self.bpda = bpda

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = _StraightThrough.apply(x, self.squeezer) if self.bpda else self.squeezer(x)
        return self.model(squeezed)
