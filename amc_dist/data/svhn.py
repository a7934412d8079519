"""SVHN (cropped digits, 32 x 32) from its official MATLAB files; "extra" is the MNIST-free proxy source.

Each `.mat` holds `X` (32, 32, 3, N) uint8 and `y` (N, 1) with labels 1..10, where 10 stands for the digit
0; they are read with scipy.io.loadmat (MATLAB v5, no code execution) after the sha256 check and turned
into N x 3 x 32 x 32 images with labels 0..9.
"""

from __future__ import annotations

import numpy as np
import scipy.io

from .dataset import Dataset
from .download import DataRoot, RemoteFile, fetch

NAME = "svhn"
CLASSES = tuple(str(digit) for digit in range(10))
_URL = "http://ufldl.stanford.edu/housenumbers/"
FILES = {
    "train": RemoteFile(
        "train_32x32.mat",
        _URL + "train_32x32.mat",
        "435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8",
    ),
    "test": RemoteFile(
        "test_32x32.mat",
        _URL + "test_32x32.mat",
        "cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b",
    ),
    "extra": RemoteFile(
        "extra_32x32.mat",
        _URL + "extra_32x32.mat",
        "a133a4beb38a00fcdda90c9489e0c04f900b660ce8a316a5e854838379a71eb3",
    ),
}
SPLITS = tuple(FILES)


def load(split: str, root: DataRoot) -> Dataset:
    if split not in FILES:
        raise ValueError(f"SVHN has splits {SPLITS}, not {split!r}")
    path = fetch(root, NAME, FILES[split])
    with root.fs.open(path, "rb") as f:
        mat = scipy.io.loadmat(f, variable_names=("X", "y"))
    x, y = parse_mat(mat)
    return Dataset(NAME, x, y, CLASSES)


def parse_mat(mat: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """N x 3 x 32 x 32 images and labels 0..9 from a loaded SVHN .mat (`X` H x W x C x N, `y` N x 1)."""
    x, y = mat["X"], np.asarray(mat["y"]).reshape(-1).astype(np.int64)
    if x.dtype != np.uint8 or x.shape[:3] != (32, 32, 3) or x.ndim != 4 or x.shape[3] != len(y):
        raise ValueError(f"SVHN X must be uint8 32 x 32 x 3 x N with N = {len(y)}, got {x.dtype} {x.shape}")
    if len(y) and (y.min() < 1 or y.max() > 10):
        raise ValueError(f"SVHN labels must lie in 1..10, got [{y.min()}, {y.max()}]")
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), y % 10
