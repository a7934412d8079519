"""Run artifacts on local disk or any fsspec URL (s3:// through s3fs), written so that a file that
exists is complete: local writes go to `<name>.part` and are renamed; object stores publish an object
only when its upload finishes."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from typing import IO

import fsspec
from fsspec.implementations.local import LocalFileSystem


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and the path inside it for a local path or URL."""
    url = os.path.expanduser(url)
    options = _options.get(url.split("://", 1)[0], {}) if "://" in url else {}
    fs, path = fsspec.core.url_to_fs(url, **options)
    return fs, path


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


@contextlib.contextmanager
def atomic_write(url: str) -> Iterator[IO[bytes]]:
    """Yield a binary file; the destination appears only if the block finishes without an exception."""
    fs, path = filesystem(url)
    parent = fs._parent(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    if isinstance(fs, LocalFileSystem):
        part = path + ".part"
        try:
            with open(part, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(part, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(part)
    else:
        buffer = io.BytesIO()
        yield buffer
        fs.pipe_file(path, buffer.getvalue())


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return fs.exists(path)


def read_bytes(url: str) -> bytes:
    fs, path = filesystem(url)
    return fs.cat_file(path)


_options: dict = {}


def configure(endpoint_url: str | None) -> None:
    """Point s3:// URLs at an S3-compatible endpoint (None: the AWS variables decide)."""
    _options.clear()
    if endpoint_url:
        _options["s3"] = {"client_kwargs": {"endpoint_url": endpoint_url}}


def pyarrow_filesystem(url: str):
    """(filesystem, path) for Ray Train's storage: (None, absolute path) on local disk."""
    fs, path = filesystem(url)
    if isinstance(fs, LocalFileSystem):
        return None, os.path.abspath(path)
    import pyarrow.fs

    return pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(fs)), path
