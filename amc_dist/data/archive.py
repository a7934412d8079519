"""Reading chosen members out of a gzipped tarball in one streaming pass (CIFAR-10 and STL-10 ship so).

Streaming (`r|gz`) reads the archive front to back once and stops as soon as every wanted member is in
hand, so the 2.6 GB STL-10 archive never needs extracting to disk; the caller verified its sha256 first.
"""

from __future__ import annotations

import tarfile

from fsspec import AbstractFileSystem


def read_members(fs: AbstractFileSystem, path: str, names: tuple[str, ...]) -> dict[str, bytes]:
    """The contents of the members `names` of the .tar.gz at `path`; ValueError naming any missing."""
    wanted, found = set(names), {}
    with fs.open(path, "rb") as f, tarfile.open(fileobj=f, mode="r|gz") as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            if name in wanted and member.isfile():
                found[name] = tar.extractfile(member).read()
                if len(found) == len(wanted):
                    break
    missing = sorted(wanted - set(found))
    if missing:
        raise ValueError(f"{path} lacks the members {missing}")
    return found
