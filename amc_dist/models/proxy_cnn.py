"""The attacker's proxy CNN of the paper's section 4.4 (after Urban et al. 2016).

Four 3x3 convolutions and two dense layers with ReLU; 2x2 max pooling after every two convolutions;
dropout 0.4, 0.3 and 0.2 (after each pooling block and before the last layer). The same architecture
serves every dataset, only the input shape changes.
"""

from __future__ import annotations

from torch import nn


def proxy_cnn(
    in_channels: int = 1, num_classes: int = 10, image_size: int = 28, width: int = 32, hidden: int = 256
) -> nn.Module:
    if image_size < 4:
        raise ValueError(f"image_size={image_size} is too small for the proxy CNN (needs at least 4)")
    side = image_size // 4

    def conv(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]

    return nn.Sequential(
        *conv(in_channels, width),
        *conv(width, width),
        nn.MaxPool2d(2),
        nn.Dropout(0.4),
        *conv(width, 2 * width),
        *conv(2 * width, 2 * width),
        nn.MaxPool2d(2),
        nn.Dropout(0.3),
        nn.Flatten(),
        nn.Linear(2 * width * side * side, hidden),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(hidden, num_classes),
    )
