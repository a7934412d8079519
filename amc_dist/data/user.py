"""A user's own data, in the two forms such data usually comes in, so a new dataset needs no new code.

- A directory holding the four standard IDX files (MNIST's names, each raw or gzipped as `<name>.gz`):
  `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`.
  Splits: "train" and "test".
- An `.npz` file with `x_<split>` (uint8, N x H x W or N x H x W x C) and `y_<split>` (integers, N) for each
  split it offers, e.g. `x_train`, `y_train`, `x_test`, `y_test` (the layout of Keras' `mnist.npz`), and
  optionally `classes` (one name per class). Any split name present in the file can be loaded.

The class count is one more than the largest label over all splits of the source (so train and test agree),
unless `classes` names them; class names default to "0".."K-1". Channels and size come from the data.
User data has no published checksum, so it is parsed without one; no pickles are ever loaded.
"""

from __future__ import annotations

import io

import fsspec
import numpy as np

from .dataset import Dataset
from .idx import SPLIT_FILES, decode_idx, images_and_labels


def is_user_data(path: str) -> bool:
    fs, local = fsspec.core.url_to_fs(path)
    return fs.isdir(local) or (local.endswith(".npz") and fs.isfile(local))


def load(path: str, split: str) -> Dataset:
    fs, local = fsspec.core.url_to_fs(path)
    if fs.isdir(local):
        return _load_idx_dir(path, fs, local.rstrip("/"), split)
    if local.endswith(".npz") and fs.isfile(local):
        return _load_npz(path, fs.cat_file(local), split)
    raise ValueError(f"{path} is neither a directory of IDX files nor an .npz file")


def _load_idx_dir(path: str, fs: fsspec.AbstractFileSystem, directory: str, split: str) -> Dataset:
    if split not in SPLIT_FILES:
        raise ValueError(f"an IDX directory has splits {tuple(SPLIT_FILES)}, not {split!r}")

    def find(name: str) -> str | None:
        return next((f"{directory}/{c}" for c in (name, f"{name}.gz") if fs.isfile(f"{directory}/{c}")), None)

    images_name, labels_name = SPLIT_FILES[split]
    images, labels = find(images_name), find(labels_name)
    if images is None or labels is None:
        raise FileNotFoundError(
            f"{path}: split {split!r} needs {images_name} and {labels_name} (each raw or .gz); "
            f"found {sorted(fs.ls(directory, detail=False))}"
        )
    x, y = images_and_labels(fs.cat_file(images), fs.cat_file(labels), f"{path} {split}")
    all_labels = [y]
    for other_split, (_, other_labels_name) in SPLIT_FILES.items():
        if other_split != split and (other := find(other_labels_name)) is not None:
            all_labels.append(decode_idx(fs.cat_file(other), f"{path} {other_split} labels"))
    return Dataset(path, x, y, _default_classes(all_labels))


def _load_npz(path: str, data: bytes, split: str) -> Dataset:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    x_key, y_key = f"x_{split}", f"y_{split}"
    if x_key not in arrays or y_key not in arrays:
        raise KeyError(
            f"{path}: no {x_key!r} and {y_key!r} for split {split!r}; the file has keys {sorted(arrays)} "
            "(expected x_<split> and y_<split>, e.g. x_train, y_train, x_test, y_test)"
        )
    x = _images(arrays[x_key], f"{path}[{x_key}]")
    labels = {key: _labels(value, f"{path}[{key}]") for key, value in arrays.items() if key.startswith("y_")}
    y = labels[y_key]
    if len(x) != len(y):
        raise ValueError(f"{path}: {x_key} has {len(x)} images but {y_key} has {len(y)} labels")
    if "classes" in arrays:
        classes = tuple(str(name) for name in arrays["classes"].reshape(-1))
    else:
        classes = _default_classes(list(labels.values()))
    return Dataset(path, x, y, classes)


def _images(x: np.ndarray, what: str) -> np.ndarray:
    if x.dtype != np.uint8:
        raise ValueError(f"{what}: images must be uint8 (pixels 0..255), got {x.dtype}")
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4:
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    raise ValueError(f"{what}: images must be N x H x W or N x H x W x C, got shape {x.shape}")


def _labels(y: np.ndarray, what: str) -> np.ndarray:
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{what}: labels must be integers, got {y.dtype}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{what}: labels must have shape (N,) or (N, 1), got {y.shape}")
    if len(y) and y.min() < 0:
        raise ValueError(f"{what}: labels must be >= 0, got {y.min()}")
    return y.astype(np.int64)


def _default_classes(labels: list[np.ndarray]) -> tuple[str, ...]:
    count = max((int(y.max()) + 1 for y in labels if len(y)), default=0)
    return tuple(str(k) for k in range(count))
