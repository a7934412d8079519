"""The one in-memory form every dataset takes, so models, attacks and splits never care where data came from.

Images stay uint8 (N x C x H x W, as stored on disk, 4x smaller than float32); scaling to [0, 1] is the
consumer's job (the paper scales all pixels to [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images `x` (uint8, N x C x H x W), labels `y` (int64, N) indexing `classes`, and a `name`.

    `name` is the dataset's registry name ("mnist", "cifar10", "svhn", "stl10") or, for user data, the path
    it was loaded from. Construction checks shapes, dtypes and label range, so a malformed source fails here
    rather than deep inside training.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.x.dtype != np.uint8 or self.x.ndim != 4:
            raise ValueError(f"{self.name}: x must be uint8 N x C x H x W, got {self.x.dtype} {self.x.shape}")
        if self.y.dtype != np.int64 or self.y.shape != (len(self.x),):
            raise ValueError(
                f"{self.name}: y must be int64 of shape ({len(self.x)},), got {self.y.dtype} {self.y.shape}"
            )
        if len(self.y) and (self.y.min() < 0 or self.y.max() >= len(self.classes)):
            raise ValueError(
                f"{self.name}: labels must lie in [0, {len(self.classes)}), "
                f"got [{self.y.min()}, {self.y.max()}]"
            )

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, indices: np.ndarray) -> Dataset:
        """The examples at `indices` (in that order), same name and classes."""
        return Dataset(self.name, self.x[indices], self.y[indices], self.classes)
