"""A stand-in for a remote object store in benchmarks: local files behind an object store's interface
(no appends, create-only whole objects), each write `ms` milliseconds slower. URLs read
`amclatency://<ms>/<absolute local path>`. Only the writes wait: the latency of a PUT is what the
metrics hub pays per commit; the machine's network is left alone."""

from __future__ import annotations

import time

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractFileSystem

from amc_dist import storage

PROTOCOL = "amclatency"


def url(ms: float, path: str) -> str:
    return f"{PROTOCOL}://{ms:g}{storage.absolute(path)}"


def latency(url: str) -> float:
    """The milliseconds per write of an amclatency:// URL."""
    return _split(url)[0]


def _split(path: str) -> tuple[float, str]:
    rest = path.removeprefix(f"{PROTOCOL}://")
    ms, _, local = rest.partition("/")
    return float(ms), "/" + local


class LatencyFileSystem(AbstractFileSystem):
    protocol = PROTOCOL

    def __init__(self, ms: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.ms, self.local = ms, LocalFileSystem()

    @classmethod
    def _strip_protocol(cls, path):
        return _split(path)[1] if str(path).startswith(f"{PROTOCOL}://") else str(path)

    @staticmethod
    def _get_kwargs_from_urls(path):
        return {"ms": _split(path)[0]} if str(path).startswith(f"{PROTOCOL}://") else {}

    def ls(self, path, detail=True, **kwargs):
        return self.local.ls(path, detail=detail)

    def info(self, path, **kwargs):
        return self.local.info(path)

    def cat_file(self, path, start=None, end=None, **kwargs):
        return self.local.cat_file(path, start=start, end=end)

    def pipe_file(self, path, value, mode="overwrite", **kwargs):
        time.sleep(self.ms / 1000)
        with storage.atomic_write(path, overwrite=mode != "create") as handle:  # whole, or not at all
            handle.write(value)

    def rm_file(self, path):
        self.local.rm_file(path)


fsspec.register_implementation(PROTOCOL, LatencyFileSystem, clobber=True)
