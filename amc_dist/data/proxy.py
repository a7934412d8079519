"""The black-box attacker's own data (paper section 4.1), never the examples the target trains on.

- MNIST -> infinite-MNIST deformations (`infinite_mnist.py`): as in the paper, derived from the MNIST
  training images, which the target trains on undeformed; the test images, where attacks are measured,
  are never used. `seed` picks the pass over the training set: examples 70000 + 60000 * seed + k for
  k < n, so example k is a fresh deformation of training image k mod 60000, and passes for different
  seeds never share an example. Default n: 60000 (one pass).
- SVHN -> the "extra" split (531,131 digits the target never trains on).
- CIFAR-10 -> STL-10 train + test, mapped onto CIFAR-10 classes at 32 x 32. There are no frogs: STL-10 has
  no such class, and the paper's ImageNet frogs are not reproduced.

For SVHN and CIFAR-10, `n` draws a random subset (without replacement, seeded by `seed`, original order
kept); `n=None` returns everything. The labels are the source's: the black-box pipeline relabels the data
by querying its oracle.
"""

from __future__ import annotations

import os

import numpy as np

from . import cifar10, mnist, stl10, svhn
from .dataset import Dataset
from .download import resolve_root
from .infinite_mnist import FIRST_INDEX, TRAIN_SIZE, infinite_mnist

PROXY_SOURCES = {mnist.NAME: "infinite-MNIST", svhn.NAME: "SVHN extra", cifar10.NAME: "STL-10 train + test"}


def load_proxy_dataset(
    target_name: str, root: str | os.PathLike[str] | None = None, n: int | None = None, seed: int = 0
) -> Dataset:
    """Proxy training data for an attacker on `target_name` ("mnist", "svhn" or "cifar10")."""
    if n is not None and n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    data_root = resolve_root(root)
    if target_name == mnist.NAME:
        count = TRAIN_SIZE if n is None else n
        first = FIRST_INDEX + TRAIN_SIZE * seed
        return infinite_mnist(mnist.load("train", data_root), np.arange(first, first + count))
    if target_name == svhn.NAME:
        source = svhn.load("extra", data_root)
    elif target_name == cifar10.NAME:
        train, test = stl10.load_splits(stl10.SPLITS, data_root)
        source = Dataset(
            stl10.NAME, np.concatenate([train.x, test.x]), np.concatenate([train.y, test.y]), train.classes
        )
    else:
        raise ValueError(f"no proxy data for {target_name!r}: known targets are {', '.join(PROXY_SOURCES)}")
    if n is None:
        return source
    if n > len(source):
        raise ValueError(f"n must be at most {len(source)} for {PROXY_SOURCES[target_name]}, got {n}")
    chosen = np.random.default_rng(seed).choice(len(source), size=n, replace=False)
    return source.subset(np.sort(chosen))
