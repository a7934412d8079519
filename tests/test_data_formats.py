"""User data (IDX directories, .npz files), the IDX codec and the numpy-only unpickler."""

import gzip
import io
import os
import pickle
import uuid

import fsspec
import numpy as np
import pytest

from amc_dist.data import Dataset, load_dataset
from amc_dist.data.idx import decode_idx, encode_idx
from amc_dist.data.pickles import load_numpy_pickle


def write_idx_dir(fs, directory, arrays, gz):
    fs.makedirs(directory, exist_ok=True)
    for name, array in arrays.items():
        content = encode_idx(array)
        fs.pipe_file(f"{directory}/{name}{'.gz' if gz else ''}", gzip.compress(content) if gz else content)


def idx_arrays(rng, shape=(5, 7)):
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (6, *shape), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.array([0, 1, 2, 1, 0, 2], dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, *shape), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.array([0, 3, 1], dtype=np.uint8),  # class 3 only in test
    }


@pytest.mark.parametrize("gz", [False, True])
def test_idx_directory_raw_and_gzipped(tmp_path, gz):
    arrays = idx_arrays(np.random.default_rng(0))
    write_idx_dir(fsspec.filesystem("file"), str(tmp_path), arrays, gz)
    train = load_dataset(tmp_path, "train")  # a PathLike works too
    test = load_dataset(str(tmp_path), "test")
    assert train.x.shape == (6, 1, 5, 7) and test.x.shape == (3, 1, 5, 7)
    np.testing.assert_array_equal(train.x[:, 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(test.y, [0, 3, 1])
    assert train.y.dtype == np.int64 and train.x.dtype == np.uint8
    assert train.classes == test.classes == ("0", "1", "2", "3")  # counted over both splits
    assert train.name == str(tmp_path)


def test_idx_directory_on_an_fsspec_url():
    fs, directory = fsspec.filesystem("memory"), f"/user-idx-{uuid.uuid4().hex}"
    write_idx_dir(fs, directory, idx_arrays(np.random.default_rng(1), shape=(4, 4)), gz=True)
    try:
        assert load_dataset(f"memory://{directory}", "test").x.shape == (3, 1, 4, 4)
    finally:
        fs.rm(directory, recursive=True)


def test_idx_directory_missing_files_are_named(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        load_dataset(str(tmp_path), "test")
    with pytest.raises(ValueError, match="splits"):
        load_dataset(str(tmp_path), "extra")


def test_npz_gray_nhw_and_color_nhwc(tmp_path):
    rng = np.random.default_rng(2)
    gray = rng.integers(0, 256, (4, 9, 8), dtype=np.uint8)
    color = rng.integers(0, 256, (3, 9, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "gray.npz", x_train=gray, y_train=np.array([0, 1, 4, 1]), x_test=gray[:1], y_test=[2])
    np.savez(
        tmp_path / "color.npz",
        x_train=color,
        y_train=np.array([[1], [0], [1]], dtype=np.uint8),
        classes=np.array(["cat", "dog"]),
    )
    data = load_dataset(str(tmp_path / "gray.npz"), "train")
    assert data.x.shape == (4, 1, 9, 8) and data.classes == ("0", "1", "2", "3", "4")
    np.testing.assert_array_equal(data.x[:, 0], gray)
    assert load_dataset(str(tmp_path / "gray.npz"), "test").y.tolist() == [2]
    data = load_dataset(str(tmp_path / "color.npz"), "train")
    assert data.x.shape == (3, 3, 9, 8) and data.x.flags.c_contiguous
    np.testing.assert_array_equal(data.x, color.transpose(0, 3, 1, 2))
    assert data.y.tolist() == [1, 0, 1] and data.y.dtype == np.int64
    assert data.classes == ("cat", "dog")


def test_npz_errors_are_clear(tmp_path):
    path = str(tmp_path / "d.npz")
    np.savez(path, x=np.zeros((2, 3, 3), np.uint8), y=[0, 1])
    with pytest.raises(KeyError, match=r"x_train.*keys \['x', 'y'\]"):
        load_dataset(path, "train")
    np.savez(path, x_train=np.zeros((2, 3, 3), np.float32), y_train=[0, 1])
    with pytest.raises(ValueError, match="uint8"):
        load_dataset(path, "train")
    np.savez(path, x_train=np.zeros((2, 3, 3), np.uint8), y_train=[0, 1, 1])
    with pytest.raises(ValueError, match="2 images but y_train has 3"):
        load_dataset(path, "train")
    np.savez(path, x_train=np.zeros((2, 3, 3), np.uint8), y_train=[0, 1], classes=np.array(["a"]))
    with pytest.raises(ValueError, match="labels must lie in"):
        load_dataset(path, "train")


def test_missing_path_is_an_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="known names are mnist, cifar10, svhn, stl10"):
        load_dataset(str(tmp_path / "nothing.npz"), "train")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset(os.path.join(str(tmp_path), "missing-dir"), "train")


def test_idx_round_trip_and_malformed_input():
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = encode_idx(array)
    assert data[:4] == b"\x00\x00\x08\x03"
    np.testing.assert_array_equal(decode_idx(data), array)
    np.testing.assert_array_equal(decode_idx(gzip.compress(data)), array)
    with pytest.raises(ValueError, match="implies 40 bytes"):
        decode_idx(data[:-1], "x")
    with pytest.raises(ValueError, match="0x0d"):
        decode_idx(b"\x00\x00\x0d\x01" + data[4:], "x")
    with pytest.raises(ValueError, match="not an IDX file"):
        decode_idx(b"PK\x03\x04")


def test_dataset_checks_its_fields():
    x = np.zeros((2, 1, 2, 2), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        Dataset("d", x.astype(np.float32), np.zeros(2, np.int64), ("a",))
    with pytest.raises(ValueError, match="int64"):
        Dataset("d", x, np.zeros(2, np.int32), ("a",))
    with pytest.raises(ValueError, match="labels must lie"):
        Dataset("d", x, np.array([0, 1]), ("a",))
    assert len(Dataset("d", x, np.array([0, 1]), ("a", "b")).subset(np.array([1]))) == 1


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("module", [b"numpy.core.multiarray", b"numpy._core.multiarray"])
def test_unpickler_rebuilds_arrays_under_both_numpy_paths(module):
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    # Protocol 3: bytes as BINBYTES and globals as newline-ended text, so the module name can be swapped.
    data = pickle.dumps((array, np.arange(3)), protocol=3).replace(b"numpy._core.multiarray", module)
    assert module in data
    loaded, labels = load_numpy_pickle(data)
    np.testing.assert_array_equal(loaded, array)
    assert labels.tolist() == [0, 1, 2]


# `eval`, not `print`: Ray Train replaces builtins.print in a process that has run a fit.
@pytest.mark.parametrize("payload", [_Evil(), eval, io.BytesIO])
def test_unpickler_refuses_every_other_global(payload):
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        load_numpy_pickle(pickle.dumps(payload, protocol=2))
