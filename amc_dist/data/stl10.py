"""STL-10 as CIFAR-10 look-alike data: the attacker's proxy source for CIFAR-10 (paper section 4.1).

The binary archive holds `train_X.bin`/`test_X.bin` (uint8, N x 3 x 96 x 96 stored column-major, so the
last two axes are swapped after reshaping) and `train_y.bin`/`test_y.bin` (uint8 labels 1..10: airplane,
bird, car, cat, deer, dog, horse, monkey, ship, truck). Images are mapped onto CIFAR-10's class indices
(car -> automobile) and monkeys dropped; CIFAR-10's frog has no STL-10 class, so no frogs come out (the
paper took its frogs from ImageNet, which is not reproduced here). Images are downsampled 96 -> 32 by
averaging each 3 x 3 block: area interpolation, exact for an integer factor, rounded half up (a mean of
nine integers is never exactly halfway, so the rounding is unambiguous).
"""

from __future__ import annotations

import numpy as np

from . import cifar10
from .archive import read_members
from .dataset import Dataset
from .download import DataRoot, RemoteFile, fetch

NAME = "stl10"
SPLITS = ("train", "test")
ARCHIVE = RemoteFile(
    "stl10_binary.tar.gz",
    "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
    "f31fd99273a1acb8609c8db427cebb1de3f71de77758cdc0e22956e1289b9866",
)
STL_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")
_CIFAR_NAME = {"car": "automobile"}
_DROPPED = -1
# STL label (1..10) -> CIFAR-10 index, or _DROPPED; index 0 is unused.
_TO_CIFAR = np.array(
    [_DROPPED]
    + [
        _DROPPED if name == "monkey" else cifar10.CLASSES.index(_CIFAR_NAME.get(name, name))
        for name in STL_CLASSES
    ]
)
_SIZE, _FACTOR = 96, 3


def load(split: str, root: DataRoot) -> Dataset:
    (dataset,) = load_splits((split,), root)
    return dataset


def load_splits(splits: tuple[str, ...], root: DataRoot) -> list[Dataset]:
    """Several splits from one verification and one pass over the (large) archive."""
    unknown = [split for split in splits if split not in SPLITS]
    if unknown:
        raise ValueError(f"STL-10 has splits {SPLITS}, not {unknown}")
    path = fetch(root, NAME, ARCHIVE)
    names = {split: (f"stl10_binary/{split}_X.bin", f"stl10_binary/{split}_y.bin") for split in splits}
    members = read_members(root.fs, path, tuple(name for pair in names.values() for name in pair))
    return [
        Dataset(NAME, *parse_binary(members[images], members[labels]), cifar10.CLASSES)
        for images, labels in names.values()
    ]


def parse_binary(images: bytes, labels: bytes) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10-indexed 32 x 32 images and labels from STL-10's binary images and labels, monkeys dropped."""
    pixels, stl_labels = np.frombuffer(images, np.uint8), np.frombuffer(labels, np.uint8).astype(np.int64)
    per_image = 3 * _SIZE * _SIZE
    if len(pixels) != per_image * len(stl_labels):
        raise ValueError(
            f"STL-10: {len(pixels)} image bytes do not hold {len(stl_labels)} 3 x 96 x 96 images"
        )
    if len(stl_labels) and (stl_labels.min() < 1 or stl_labels.max() > 10):
        raise ValueError(f"STL-10 labels must lie in 1..10, got [{stl_labels.min()}, {stl_labels.max()}]")
    y = _TO_CIFAR[stl_labels]
    keep = y != _DROPPED
    # Downsample in the stored (column-major) layout, then swap the small result's axes to row-major.
    x = downsample(pixels.reshape(-1, 3, _SIZE, _SIZE)[keep]).transpose(0, 1, 3, 2)
    return np.ascontiguousarray(x), y[keep]


def downsample(x: np.ndarray) -> np.ndarray:
    """N x C x 96 x 96 uint8 -> N x C x 32 x 32: each output pixel the rounded mean of its 3 x 3 block."""
    n, c, h, w = x.shape
    blocks = x.reshape(n, c, h // _FACTOR, _FACTOR, w // _FACTOR, _FACTOR)
    sums = blocks.sum(axis=(3, 5), dtype=np.uint16)
    return ((sums + _FACTOR**2 // 2) // _FACTOR**2).astype(np.uint8)
