"""CIFAR-10 from its official python archive: verified before unpickling, and unpickled numpy-only.

The archive holds five training batches and one test batch, each a Python 2 pickle of a dict with
`b'data'` (10000 x 3072 uint8, channel-major 3 x 32 x 32) and `b'labels'` (a list of ints). A pickle can
run code, so the archive's sha256 is checked first and the batches are loaded by an unpickler that admits
nothing but numpy arrays.
"""

from __future__ import annotations

import numpy as np

from .archive import read_members
from .dataset import Dataset
from .download import DataRoot, RemoteFile, fetch
from .pickles import load_numpy_pickle

NAME = "cifar10"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SPLITS = ("train", "test")
ARCHIVE = RemoteFile(
    "cifar-10-python.tar.gz",
    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
)
_MEMBERS = {
    "train": tuple(f"cifar-10-batches-py/data_batch_{k}" for k in range(1, 6)),
    "test": ("cifar-10-batches-py/test_batch",),
}


def load(split: str, root: DataRoot) -> Dataset:
    if split not in SPLITS:
        raise ValueError(f"CIFAR-10 has splits {SPLITS}, not {split!r}")
    path = fetch(root, NAME, ARCHIVE)
    members = read_members(root.fs, path, _MEMBERS[split])
    x, y = parse_batches([members[name] for name in _MEMBERS[split]])
    return Dataset(NAME, x, y, CLASSES)


def parse_batches(batches: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Images N x 3 x 32 x 32 and labels from pickled CIFAR-10 batches, in order."""
    xs, ys = [], []
    for blob in batches:
        batch = load_numpy_pickle(blob, encoding="bytes")
        data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"], dtype=np.int64)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(f"CIFAR-10 batch data must be uint8 N x 3072, got {data.dtype} {data.shape}")
        if labels.shape != (len(data),):
            raise ValueError(f"CIFAR-10 batch has {len(data)} images but labels of shape {labels.shape}")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    return np.concatenate(xs), np.concatenate(ys)
