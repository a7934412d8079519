"""Run artifacts on local disk or any fsspec URL (s3:// through s3fs), written so that a file that
exists is complete: local writes go to a unique `<name>.<id>.part` and are renamed; object stores
publish an object only when its upload finishes.

S3 credentials come only from the standard AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, read
by botocore in each process), so they are never passed around, logged, pickled or written into a run.
The endpoint is `configure(endpoint_url)` (the config's), else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL;
the region AWS_REGION / AWS_DEFAULT_REGION. Cloud metadata probing is off unless explicitly enabled.
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

import fsspec
from fsspec.implementations.local import LocalFileSystem

if TYPE_CHECKING:
    import pyarrow.fs

_endpoint_url: str | None = None


def configure(endpoint_url: str | None = None) -> None:
    """Set this process's S3 endpoint (e.g. `http://127.0.0.1:8333`); None falls back to the AWS variables."""
    global _endpoint_url
    _endpoint_url = endpoint_url or None


def configured_endpoint() -> str | None:
    """The endpoint given to `configure` (a config's `run.s3_endpoint`), which the AWS variables of
    other processes do not know about."""
    return _endpoint_url


def _s3_options() -> dict:
    # botocore would otherwise ask 169.254.169.254 for credentials when none are set: never leave loopback.
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    client: dict[str, str] = {}
    endpoint = _endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        client["endpoint_url"] = endpoint
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        client["region_name"] = region  # botocore itself reads only AWS_DEFAULT_REGION
    return {"client_kwargs": client}


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and the path inside it for a local path or URL."""
    url = os.path.expanduser(url)
    protocol, _ = fsspec.core.split_protocol(url)
    options = _s3_options() if protocol in ("s3", "s3a") else {}
    fs, path = fsspec.core.url_to_fs(url, **options)
    return fs, path


def pyarrow_filesystem(url: str) -> tuple[pyarrow.fs.FileSystem | None, str]:
    """Ray Train's `RunConfig(storage_filesystem=..., storage_path=...)` for `url`: no filesystem and the
    absolute path for local storage; otherwise our fsspec filesystem wrapped for pyarrow (it pickles
    with the endpoint but without credentials: each Ray worker needs the AWS variables itself)."""
    fs, path = filesystem(url)
    if isinstance(fs, LocalFileSystem):
        return None, path
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    return PyFileSystem(FSSpecHandler(fs)), path


def absolute(url: str) -> str:
    """A URL as is, a local path made absolute (Ray workers run in other directories)."""
    return url if "://" in url else os.path.abspath(os.path.expanduser(url))


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


@contextlib.contextmanager
def atomic_write(url: str, *, overwrite: bool = True) -> Iterator[IO[bytes]]:
    """Yield a binary file; the destination appears only if the block finishes without an exception.
    With `overwrite=False` the write is create-only: FileExistsError if the destination exists, also
    when another process publishes it first."""
    fs, path = filesystem(url)
    if isinstance(fs, LocalFileSystem):
        fs.makedirs(fs._parent(path), exist_ok=True)
        part = f"{path}.{uuid.uuid4().hex[:12]}.part"  # unique: writers of one path may race
        try:
            with open(part, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            if overwrite:
                os.replace(part, path)
            else:
                os.link(part, path)  # fails if `path` exists, where a rename would replace it
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(part)
    else:  # object stores have no folders to make, and publish an object only once it is whole
        buffer = io.BytesIO()
        yield buffer
        if overwrite:
            fs.pipe_file(path, buffer.getvalue())
            return
        try:
            fs.pipe_file(path, buffer.getvalue(), mode="create")
        except FileExistsError:
            raise
        except OSError as error:  # S3 servers other than AWS answer a refused create as a plain 412
            if exists(url):
                raise FileExistsError(f"{url} already exists") from error
            raise


def unreachable(url: str) -> str | None:
    """Why the storage holding `url` does not answer (a listing fails), or None when it does."""
    try:
        exists(url)
    except Exception as exc:  # whatever the filesystem raises for a server that is gone
        return f"{type(exc).__name__}: {exc}"
    return None


def access_errors() -> tuple[type[Exception], ...]:
    """What reading or writing storage raises when it is missing, refused or does not answer: OSError,
    and botocore's own errors for S3 (no credentials, a bad endpoint), which are not OSErrors."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return (OSError,)
    return OSError, BotoCoreError, ClientError


def unwritable(url: str) -> str | None:
    """Why a local folder `url` cannot be created or written (None when it can, and for object stores,
    which `unreachable` checks once the run touches them). Creates the folder."""
    fs, path = filesystem(url)
    if not isinstance(fs, LocalFileSystem):
        return None
    try:
        fs.makedirs(path, exist_ok=True)
    except OSError as exc:
        return f"cannot create {path} ({exc.strerror or type(exc).__name__})"
    return None if os.access(path, os.W_OK) else f"{path} is not writable"


def exists(url: str) -> bool:
    """Whether `url` exists now, also if another process wrote it (object stores cache listings)."""
    fs, path = filesystem(url)
    fs.invalidate_cache(path)
    return fs.exists(path)


def size(url: str) -> int:
    """The size in bytes of the file at `url` now; FileNotFoundError if there is none."""
    fs, path = filesystem(url)
    fs.invalidate_cache(path)
    return fs.size(path)


def read_bytes(url: str, start: int | None = None, end: int | None = None) -> bytes:
    """The bytes of the file at `url`, or of its range [start, end)."""
    fs, path = filesystem(url)
    return fs.cat_file(path, start=start, end=end)


def listdir(url: str) -> list[str]:
    """The names in the folder (or object prefix) `url` now, sorted; empty if it does not exist."""
    fs, path = filesystem(url)
    fs.invalidate_cache(path)
    try:
        entries = fs.ls(path, detail=False)
    except FileNotFoundError:
        return []
    return sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in entries)


def remove(url: str) -> None:
    """Delete the file at `url` if it exists."""
    fs, path = filesystem(url)
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(path)
    fs.invalidate_cache(path)
