"""LeNet-5 (LeCun et al. 1998) with ReLU and max pooling: the paper's MNIST target."""

from __future__ import annotations

from torch import nn


def lenet(in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> nn.Module:
    """Two 5x5 convolutions (6 and 16 maps) then 120-84-classes dense layers."""
    # padding=2 on the first conv keeps the classic 28x28 -> 14 -> 5 geometry of LeNet-5 on MNIST.
    side = ((image_size // 2) - 4) // 2
    if side < 1:
        raise ValueError(f"image_size={image_size} is too small for LeNet (needs at least 12)")
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * side * side, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, num_classes),
    )
