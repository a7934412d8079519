"""Datasets as uint8 arrays, fetched, verified and parsed behind one call: `load_dataset(name, split, root)`.

Known names: "mnist", "cifar10", "svhn", "stl10" (STL-10 mapped onto CIFAR-10's classes at 32 x 32).
Anything else is the path (or fsspec URL) of the user's own data: see `user.py` for the accepted layouts.
Data files live under `root` (a local path or fsspec URL; default `$AMC_DATA` or `~/.cache/amc-dist`);
`download.py` describes how they are fetched and verified, and the `AMC_DATA_MIRROR` override.

Also here: `paper_split` (the paper's class-balanced 30/21/49 split of a test set, `splits.py`),
`load_proxy_dataset` (the black-box attacker's own data, `proxy.py`), and `augment.augmentation_for`
(training-time augmentation).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from . import cifar10, mnist, stl10, svhn, user
from .dataset import Dataset
from .download import ChecksumError, DataRoot, DownloadError, resolve_root
from .proxy import load_proxy_dataset
from .splits import paper_split

_LOADERS: dict[str, Callable[[str, DataRoot], Dataset]] = {
    mnist.NAME: mnist.load,
    cifar10.NAME: cifar10.load,
    svhn.NAME: svhn.load,
    stl10.NAME: stl10.load,
}
KNOWN_DATASETS = tuple(_LOADERS)


def load_dataset(name_or_path: str | os.PathLike[str], split: str, root: str | None = None) -> Dataset:
    """One split of a known dataset (fetched under `root` if needed) or of the user's data at a path."""
    name = os.fspath(name_or_path)
    if name in _LOADERS:
        return _LOADERS[name](split, resolve_root(root))
    if user.is_user_data(name):
        return user.load(name, split)
    raise ValueError(
        f"unknown dataset {name!r}: known names are {', '.join(KNOWN_DATASETS)}; anything else must be "
        "an existing directory of IDX files or an .npz file"
    )


__all__ = [
    "KNOWN_DATASETS",
    "ChecksumError",
    "Dataset",
    "DownloadError",
    "load_dataset",
    "load_proxy_dataset",
    "paper_split",
]
