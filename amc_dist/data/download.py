"""Fetch and verify dataset files under a data root, the one place every dataset module goes through.

Why it is strict: several of these files are pickles or archives parsed by code that trusts them, and they
are large enough that an interrupted transfer is common. So:

- A file is downloaded to a `.part` name beside its final name and renamed only once it is complete and
  its sha256 matched: an interrupted download never leaves a file that looks complete.
- A file's sha256 is checked before anything parses it, also when it was already present under the root.
  On a mismatch the file is moved aside to `<file>.corrupt` (so the next call downloads afresh) and a
  `ChecksumError` names the file and both hashes.

The data root is a local path or any fsspec URL (`s3://bucket/prefix`, `memory://x` in tests); by default
`~/.cache/amc-dist`, or the environment variable `AMC_DATA`. Files live at `<root>/<dataset>/<file name>`.

Downloads come from each file's canonical URL unless the environment variable `AMC_DATA_MIRROR` is set, in
which case they come from `<AMC_DATA_MIRROR>/<file name>` (any http(s):// or file:// URL): the way to use an
internal mirror, and how the tests point downloads at a local server.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.request
import uuid
from dataclasses import dataclass

import fsspec
from fsspec import AbstractFileSystem

log = logging.getLogger(__name__)

MIRROR_ENV = "AMC_DATA_MIRROR"
ROOT_ENV = "AMC_DATA"
DEFAULT_ROOT = "~/.cache/amc-dist"
_CHUNK = 1 << 22


class ChecksumError(ValueError):
    """A dataset file's sha256 differs from the expected one; the file was moved aside, never parsed."""


class DownloadError(OSError):
    """A download failed or was cut short; nothing was left under the final file name."""


@dataclass(frozen=True)
class RemoteFile:
    """A file a dataset needs: its name under `<root>/<dataset>/`, where it comes from, its sha256."""

    name: str
    url: str
    sha256: str


@dataclass(frozen=True)
class DataRoot:
    """A filesystem and a base path on it; all dataset file IO goes through this."""

    fs: AbstractFileSystem
    path: str

    def file(self, dataset: str, name: str) -> str:
        return f"{self.path.rstrip('/')}/{dataset}/{name}"


def resolve_root(root: str | os.PathLike[str] | None = None) -> DataRoot:
    """`root`, else `$AMC_DATA`, else `~/.cache/amc-dist`, as a filesystem and path."""
    if root is None:
        root = os.environ.get(ROOT_ENV) or DEFAULT_ROOT
    root = os.fspath(root)
    if "://" not in root:
        root = os.path.expanduser(root)
    fs, path = fsspec.core.url_to_fs(root)
    return DataRoot(fs, path)


def sha256_of(fs: AbstractFileSystem, path: str) -> str:
    digest = hashlib.sha256()
    with fs.open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_error(what: str, expected: str, actual: str, note: str = "") -> ChecksumError:
    return ChecksumError(f"checksum mismatch for {what}: expected {expected}, got {actual}{note}")


def _move_aside(fs: AbstractFileSystem, source: str, path: str, expected: str, actual: str) -> ChecksumError:
    """Move `source`, which failed its check as the file `path`, to `<path>.corrupt`; return the error."""
    corrupt = f"{path}.corrupt"
    fs.mv(source, corrupt)
    note = f"; moved the file to {corrupt} (the next call fetches it again)"
    return checksum_error(f"{path} (sha256)", expected, actual, note)


def verify(fs: AbstractFileSystem, path: str, sha256: str) -> None:
    """Raise ChecksumError (after moving the file aside) unless the file at `path` has this sha256."""
    actual = sha256_of(fs, path)
    if actual != sha256:
        raise _move_aside(fs, path, path, sha256, actual)


def write_atomic(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Write `data` to a unique `.part` name, then rename it to `path`."""
    part = _part_name(path)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    try:
        fs.pipe_file(part, data)
        fs.mv(part, path)
    finally:
        _remove_if_present(fs, part)


def source_url(remote: RemoteFile) -> str:
    """The URL a file is downloaded from: `$AMC_DATA_MIRROR/<name>` when that is set, else its own URL."""
    mirror = os.environ.get(MIRROR_ENV)
    return f"{mirror.rstrip('/')}/{remote.name}" if mirror else remote.url


def fetch(root: DataRoot, dataset: str, remote: RemoteFile) -> str:
    """Path of `remote` under the root, downloaded if missing; its sha256 verified either way."""
    path = root.file(dataset, remote.name)
    if root.fs.exists(path):
        verify(root.fs, path, remote.sha256)
    else:
        _download(root.fs, source_url(remote), path, remote.sha256)
    return path


def _download(fs: AbstractFileSystem, url: str, path: str, sha256: str) -> None:
    """Stream `url` into a `.part` file, hashing on the way; rename it to `path` only if the hash matches."""
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    part = _part_name(path)
    digest = hashlib.sha256()
    log.info("downloading %s to %s", url, path)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, fs.open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done, next_report = 0, 0.1
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                done += len(chunk)
                if total and done / total >= next_report:
                    log.info("%s: %d%% of %d bytes", url, 100 * done // total, total)
                    next_report += 0.1
        if total and done != total:
            raise DownloadError(f"download of {url} ended after {done} of {total} bytes")
        actual = digest.hexdigest()
        if actual != sha256:
            raise _move_aside(fs, part, path, sha256, actual)
        fs.mv(part, path)
    except (DownloadError, ChecksumError):
        raise
    except Exception as error:
        raise DownloadError(f"download of {url} failed: {error!r}") from error
    finally:  # whatever happened, no partial file stays behind (after a success, `part` is gone already)
        _remove_if_present(fs, part)


def _part_name(path: str) -> str:
    # Unique per writer, so concurrent workers sharing a root never write into each other's file.
    return f"{path}.{uuid.uuid4().hex[:12]}.part"


def _remove_if_present(fs: AbstractFileSystem, path: str) -> None:
    if fs.exists(path):
        fs.rm(path)
