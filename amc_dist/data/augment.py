"""Training-time augmentation, which the paper uses for CIFAR-10 and SVHN (after Urban et al. 2016).

Why these choices: random translations help both datasets; horizontal flips preserve CIFAR-10's labels
(natural images) but not SVHN's or MNIST's (digits), so only CIFAR-10 flips. Shifts are pad-and-crop with
zero padding (the standard ResNet recipe for CIFAR-10): up to 4 px each way for CIFAR-10 and, since SVHN
crops are tight around the digit and neighbouring digits sit at the border, up to 2 px for SVHN. MNIST, the
other names (STL-10, user data) get the identity: the paper augments only CIFAR-10 and SVHN.

Pure torch on a float batch in [0, 1], N x C x H x W, on any device; the output stays in [0, 1]. Random
draws come from the given (CPU) `torch.Generator`, or torch's global one when none is given, so a seeded
generator makes the result reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    """Per-example random shift by up to `max_shift` px in each direction, then optional random h-flip."""

    max_shift: int = 0
    flip: bool = False

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"augmentation expects N x C x H x W, got shape {tuple(x.shape)}")
        n, _, height, width = x.shape
        if self.max_shift:
            s = self.max_shift
            offsets = torch.randint(0, 2 * s + 1, (2, n), generator=generator).to(x.device)
            padded = F.pad(x, (s, s, s, s))
            rows = offsets[0, :, None] + torch.arange(height, device=x.device)
            cols = offsets[1, :, None] + torch.arange(width, device=x.device)
            batch = torch.arange(n, device=x.device)[:, None, None]
            # Advanced indices around a slice put the channel axis last: N x H x W x C.
            x = padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()
        if self.flip:
            flipped = (torch.rand(n, generator=generator) < 0.5).to(x.device)
            x = torch.where(flipped[:, None, None, None], x.flip(3), x)
        return x


_BY_DATASET = {
    "cifar10": Augmentation(max_shift=4, flip=True),
    "svhn": Augmentation(max_shift=2),
}


def augmentation_for(dataset_name: str) -> Augmentation:
    """The augmentation used when training on `dataset_name`; the identity for anything but CIFAR-10, SVHN."""
    return _BY_DATASET.get(dataset_name, Augmentation())
