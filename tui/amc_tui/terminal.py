"""Keeping Ray's own log lines off the dashboard.

Ray's C++ core writes warnings straight to file descriptor 2, which is also where Textual draws (its
Linux driver writes to `sys.__stderr__`). While the dashboard runs, fd 2 goes to a log file and Textual
gets the terminal through a duplicate of the original descriptor; both are restored on exit, so a crash
message still reaches the terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def stray_output_to_file() -> Iterator[str]:
    """Yield the log file's path; it is removed on exit unless something was written to it."""
    if not sys.__stderr__ or not sys.__stderr__.isatty():
        yield ""
        return
    handle, path = tempfile.mkstemp(prefix="amc-tui-", suffix=".log")
    saved_fd = os.dup(2)
    terminal = os.fdopen(os.dup(2), "w", buffering=1, encoding=sys.__stderr__.encoding, errors="replace")
    saved = sys.__stderr__, sys.stderr
    sys.__stderr__ = sys.stderr = terminal
    os.dup2(handle, 2)
    os.close(handle)
    try:
        yield path
    finally:
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        sys.__stderr__, sys.stderr = saved
        terminal.close()
        if os.path.getsize(path) == 0:
            os.remove(path)
