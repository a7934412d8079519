"""Repack a wheel in place without the files under some prefixes (`strip_wheel.py WHEEL PREFIX...`), its
RECORD rewritten to match, so pip installs it as usual. Used by cluster/gpu_smoke.sh to fit Ray into a
device's working-tree limit; prints the sizes before and after."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path


def strip(wheel: Path, prefixes: tuple[str, ...]) -> None:
    target = wheel.with_suffix(".stripping")
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        kept = [i for i in source.infolist() if not i.filename.startswith(prefixes)]
        for info in kept:
            data = source.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                rows = data.decode().splitlines()
                data = ("\n".join(r for r in rows if not r.startswith(prefixes)) + "\n").encode()
            out.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    target.replace(wheel)


def main(argv: list[str]) -> int:
    wheel, prefixes = Path(argv[0]), tuple(argv[1:])
    before = wheel.stat().st_size
    strip(wheel, prefixes)
    print(f"{wheel.name}: {before / 2**20:.1f} MiB -> {wheel.stat().st_size / 2**20:.1f} MiB without "
          f"{', '.join(prefixes)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
