"""Run storage on local disk and on a real S3 server: atomic and create-only writes, fresh listings,
credentials only from the environment, and the filesystem Ray Train writes through."""

import os
import pickle

import pyarrow.fs
import pytest
import s3fs

from amc_dist import storage


def write(url, data, **options):
    with storage.atomic_write(url, **options) as handle:
        handle.write(data)


def test_local_create_only_write_refuses_an_existing_file_and_leaves_no_part(tmp_path):
    url = str(tmp_path / "steps" / "a.done")
    write(url, b"first", overwrite=False)
    with pytest.raises(FileExistsError):
        write(url, b"second", overwrite=False)
    write(url, b"third")
    assert storage.read_bytes(url) == b"third"
    assert storage.listdir(str(tmp_path / "steps")) == ["a.done"]


def test_local_listdir_size_range_and_remove(tmp_path):
    assert storage.listdir(str(tmp_path / "absent")) == []
    url = str(tmp_path / "x.bin")
    write(url, b"0123456789")
    assert storage.size(url) == 10
    assert storage.read_bytes(url, 3, 6) == b"345"
    storage.remove(url)
    storage.remove(url)  # absent: nothing to do
    assert not storage.exists(url)


def test_s3_round_trip_atomic_create_only_and_fresh_listing(s3_run, s3_server):
    url = storage.join(s3_run, "steps", "train.done")
    assert not storage.exists(url)  # also fills s3fs's listing cache for the folder
    write(url, b'{"step": "train"}', overwrite=False)
    assert storage.exists(url)
    with pytest.raises(FileExistsError):
        write(url, b"overwritten?", overwrite=False)
    with pytest.raises(RuntimeError), storage.atomic_write(storage.join(s3_run, "steps", "b.done")) as handle:
        handle.write(b"half")
        raise RuntimeError("the step failed")
    assert storage.listdir(storage.join(s3_run, "steps")) == ["train.done"]

    other = s3fs.S3FileSystem(
        key=s3_server.key,
        secret=s3_server.secret,
        client_kwargs={"endpoint_url": s3_server.endpoint_url},
        skip_instance_cache=True,
    )  # fmt: skip: another process, as far as the listing cache goes
    other.pipe_file(f"{s3_run[5:]}/steps/eval.done", b"{}")
    assert storage.exists(storage.join(s3_run, "steps", "eval.done"))
    assert storage.listdir(storage.join(s3_run, "steps")) == ["eval.done", "train.done"]

    assert storage.read_bytes(url) == b'{"step": "train"}'
    assert storage.size(url) == 17 and storage.read_bytes(url, 2, 6) == b"step"
    write(url, b"replaced")
    assert storage.read_bytes(url) == b"replaced"
    storage.remove(url)
    assert not storage.exists(url)
    assert storage.listdir(storage.join(s3_run, "absent")) == []


def test_explicit_endpoint_wins_over_the_environment(s3_run, s3_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # nothing listens there
    storage.configure(s3_server.endpoint_url)
    write(storage.join(s3_run, "a"), b"via config")
    assert storage.read_bytes(storage.join(s3_run, "a")) == b"via config"


def test_credentials_are_never_passed_around_and_metadata_is_never_asked(s3_run, s3_server, monkeypatch):
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    fs, path = storage.filesystem(s3_run)
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert fs.storage_options == {
        "client_kwargs": {"endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1"}
    }
    arrow, arrow_path = storage.pyarrow_filesystem(s3_run)
    shipped = pickle.dumps(arrow)  # what Ray sends to its workers
    assert s3_server.secret.encode() not in shipped and s3_server.key.encode() not in shipped
    assert path == arrow_path == s3_run[len("s3://") :]


def test_pyarrow_filesystem_writes_where_storage_reads(s3_run, tmp_path):
    assert storage.pyarrow_filesystem(str(tmp_path / "runs")) == (None, str(tmp_path / "runs"))
    arrow, path = storage.pyarrow_filesystem(s3_run)
    assert isinstance(arrow, pyarrow.fs.FileSystem)
    arrow = pickle.loads(pickle.dumps(arrow))
    arrow.create_dir(f"{path}/r.train")
    with arrow.open_output_stream(f"{path}/r.train/checkpoint_0/model.pt") as stream:
        stream.write(b"weights")
    assert storage.read_bytes(storage.join(s3_run, "r.train", "checkpoint_0", "model.pt")) == b"weights"
    selector = pyarrow.fs.FileSelector(path, recursive=True)
    files = [info.path for info in arrow.get_file_info(selector) if info.type == pyarrow.fs.FileType.File]
    assert files == [f"{path}/r.train/checkpoint_0/model.pt"]
