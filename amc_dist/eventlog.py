"""A run's event log in storage, one JSON object per line, durable before `append` returns.

On a local path it is `<run_dir>/metrics.jsonl`, appended and fsynced. Object stores cannot append,
so there each batch is a new object `<run_dir>/metrics.jsonl.d/<12-digit number>.jsonl`, written
create-only so that no writer ever replaces another's batch. `EventReader` reads either layout
incrementally. This module imports neither torch nor ray: the dashboard uses it too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from amc_dist import storage

FILE = "metrics.jsonl"
SEGMENTS = "metrics.jsonl.d"
_SEGMENT = re.compile(r"^(\d{12})\.jsonl$")


def encode(events: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(event, sort_keys=True).encode() + b"\n" for event in events)


def segment_name(number: int) -> str:
    return f"{number:012d}.jsonl"


class EventLog:
    """The writer; batching events is the caller's choice. The local file takes one writer at a time
    (a second one's half-written line would be cut); segments take any number."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir.rstrip("/")
        fs, path = storage.filesystem(self.run_dir)
        self._local_path = os.path.join(path, FILE) if isinstance(fs, LocalFileSystem) else None
        self._next_segment: int | None = None  # found on the first append

    def append(self, events: list[dict[str, Any]]) -> None:
        """Write `events` in order; they are in storage when this returns."""
        if not events:
            return
        data = encode(events)
        if self._local_path is not None:
            self._append_local(data)
        else:
            self._write_segment(data)

    def _append_local(self, data: bytes) -> None:
        folder = os.path.dirname(self._local_path)
        os.makedirs(folder, exist_ok=True)
        created = not os.path.exists(self._local_path)
        fd = os.open(self._local_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            end = os.lseek(fd, 0, os.SEEK_END)
            if end and os.pread(fd, 1, end - 1) != b"\n":
                data = b"\n" + data  # a writer died mid-line: end that line so ours stays whole
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:  # the new file's name must be durable too
            folder_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(folder_fd)
            finally:
                os.close(folder_fd)

    def _write_segment(self, data: bytes) -> None:
        folder = storage.join(self.run_dir, SEGMENTS)
        if self._next_segment is None:
            self._next_segment = _last_segment(folder) + 1
        while True:
            try:
                with storage.atomic_write(
                    storage.join(folder, segment_name(self._next_segment)), overwrite=False
                ) as handle:
                    handle.write(data)
                break
            except FileExistsError:  # another writer took this number: continue after the newest
                self._next_segment = max(self._next_segment, _last_segment(folder)) + 1
        self._next_segment += 1


def _last_segment(folder: str) -> int:
    numbers = [int(m.group(1)) for name in storage.listdir(folder) if (m := _SEGMENT.match(name))]
    return max(numbers, default=-1)


class EventReader:
    """Reads a run's events as they arrive, oldest first: the plain file from where the last poll
    stopped (a partly written last line waits for the next poll), then every segment not read yet, in
    name order. Lines that are not a JSON object in UTF-8 are skipped and counted in `corrupt`."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir.rstrip("/")
        self.corrupt = 0
        self._offset = 0
        self._pending = b""
        self._segments_read: set[str] = set()

    def poll(self) -> list[dict[str, Any]]:
        """The events that arrived since the last call."""
        return self._poll_file() + self._poll_segments()

    def _poll_file(self) -> list[dict[str, Any]]:
        url = storage.join(self.run_dir, FILE)
        try:
            size = storage.size(url)
        except FileNotFoundError:
            return []
        if size < self._offset:  # replaced by a new, shorter file: start again
            self._offset, self._pending = 0, b""
        if size == self._offset:
            return []
        chunk = storage.read_bytes(url, self._offset, size)
        self._offset += len(chunk)
        lines = (self._pending + chunk).split(b"\n")
        self._pending = lines.pop()
        return self._decode(lines)

    def _poll_segments(self) -> list[dict[str, Any]]:
        folder = storage.join(self.run_dir, SEGMENTS)
        events: list[dict[str, Any]] = []
        for name in storage.listdir(folder):
            if _SEGMENT.match(name) and name not in self._segments_read:
                events += self._decode(storage.read_bytes(storage.join(folder, name)).split(b"\n"))
                self._segments_read.add(name)
        return events

    def _decode(self, lines: list[bytes]) -> list[dict[str, Any]]:
        events = []
        for line in lines:
            if not line.strip():
                continue
            try:
                event = json.loads(line.decode("utf-8"))
            except ValueError:  # also UnicodeDecodeError
                event = None
            if isinstance(event, dict):
                events.append(event)
            else:
                self.corrupt += 1
        return events


def read_events(run_dir: str) -> list[dict[str, Any]]:
    """Every complete event of a run, in order (a partly written last line is never an acknowledged one)."""
    return EventReader(run_dir).poll()
