"""Keeping Ray's own log lines off the dashboard.

Ray's C++ core writes warnings straight to file descriptor 2, which is also where Textual draws (its
Linux driver writes to `sys.__stderr__`). While the dashboard runs, fd 2 goes to an anonymous temporary
file and Textual gets the terminal through a duplicate of the original descriptor; both are restored on
exit, so a crash message still reaches the terminal. The file vanishes with the process, however it
ends; after a crash, `StrayOutput.keep()` saves what was written to a named file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import IO


class StrayOutput:
    def __init__(self, file: IO[bytes] | None) -> None:
        self._file = file

    def keep(self) -> str | None:
        """Save the captured output to a named file; its path, or None when nothing was written."""
        if self._file is None or self._file.seek(0, os.SEEK_END) == 0:
            return None
        self._file.seek(0)
        with tempfile.NamedTemporaryFile(prefix="amc-tui-", suffix=".log", delete=False) as saved:
            shutil.copyfileobj(self._file, saved)
        return saved.name


@contextlib.contextmanager
def stray_output_captured() -> Iterator[StrayOutput]:
    if not sys.__stderr__ or not sys.__stderr__.isatty():
        yield StrayOutput(None)
        return
    with tempfile.TemporaryFile() as capture:  # unlinked at once: nothing is left behind
        saved_fd = os.dup(2)
        encoding = sys.__stderr__.encoding
        terminal = os.fdopen(os.dup(2), "w", buffering=1, encoding=encoding, errors="replace")
        saved = sys.__stderr__, sys.stderr
        sys.__stderr__ = sys.stderr = terminal
        os.dup2(capture.fileno(), 2)
        try:
            yield StrayOutput(capture)
        finally:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            sys.__stderr__, sys.stderr = saved
            terminal.close()
