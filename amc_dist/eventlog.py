"""A run's event log in storage, one JSON object per line, durable before `append` returns.

On a local path it is `<run_dir>/metrics.jsonl`, appended and fsynced. Object stores cannot append,
so there each batch is a new object `<run_dir>/metrics.jsonl.d/<12-digit number>.jsonl`, written
create-only so that no writer ever replaces another's batch. `EventReader` reads either layout
incrementally. This module imports neither torch nor ray: the dashboard uses it too.

So that replaying a long run lists few objects, the writer compacts segments: every FANOUT appends,
each FANOUT adjacent objects of one tier (segments are tier 0; a merge of FANOUT tier-t objects is
tier t+1) become one object `<first>-<last>.jsonl` (numbers of 12 digits), whose first line lists the
segments it holds and their sizes, followed by their bytes. At most FANOUT - 1 objects per tier
remain (720,000 segments: under 80 objects). The merged object is written before its parts are
removed, and it sorts before them, so a reader that lists either finds each segment once; one that
finds a part gone between its listing and its read lists again.
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
FANOUT = 16
_OBJECT = re.compile(r"^(\d{12})(?:-(\d{12}))?\.jsonl$")  # a segment, or a merge of first-last


def encode(events: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(event, sort_keys=True).encode() + b"\n" for event in events)


def segment_name(number: int) -> str:
    return f"{number:012d}.jsonl"


def merged_name(first: int, last: int) -> str:
    return f"{first:012d}-{last:012d}.jsonl"


def _objects(names: Iterable[str]) -> list[tuple[int, int, str]]:
    """(first, last segment, name) of each segment or merged object, in replay order: by first
    segment, a merge before the parts it covers."""
    found = [(int(m[1]), int(m[2] or m[1]), name) for name in names if (m := _OBJECT.match(name))]
    return sorted(found, key=lambda o: (o[0], -o[1]))


def _segments(name: str, data: bytes) -> list[tuple[int, bytes]]:
    """The (number, bytes) of each segment held by the object `name`."""
    if "-" not in name:
        return [(int(name[:12]), data)]
    header, _, body = data.partition(b"\n")
    pieces, offset = [], 0
    for number, size in json.loads(header)["segments"]:
        pieces.append((number, body[offset : offset + size]))
        offset += size
    return pieces


def _tier(first: int, last: int) -> int:
    tier, span = 0, last - first + 1
    while span >= FANOUT:
        tier, span = tier + 1, span // FANOUT
    return tier


def compact(folder: str) -> int:
    """Merge each FANOUT adjacent objects of one tier into one, and remove objects a merge covers;
    how many merges. Safe beside readers and other compactors (merges are written create-only)."""
    merges = 0
    while True:
        objects = _objects(storage.listdir(folder))
        covered, kept = [], []
        for obj in objects:  # parts left by a compactor that died between its write and its removals
            (covered if kept and obj[1] <= kept[-1][1] else kept).append(obj)
        for _, _, name in covered:
            storage.remove(storage.join(folder, name))
        group = next(
            (
                kept[i : i + FANOUT]
                for i in range(len(kept) - FANOUT + 1)
                if len({_tier(f, last) for f, last, _ in kept[i : i + FANOUT]}) == 1
                and all(kept[j + 1][0] == kept[j][1] + 1 for j in range(i, i + FANOUT - 1))
            ),
            None,
        )
        if group is None:
            return merges
        pieces = [
            p for _, _, name in group for p in _segments(name, storage.read_bytes(storage.join(folder, name)))
        ]
        header = json.dumps({"segments": [[number, len(data)] for number, data in pieces]}).encode()
        try:
            with storage.atomic_write(
                storage.join(folder, merged_name(group[0][0], group[-1][1])), overwrite=False
            ) as handle:
                handle.write(header + b"\n" + b"".join(data for _, data in pieces))
        except FileExistsError:  # another compactor merged the same objects
            pass
        for _, _, name in group:
            storage.remove(storage.join(folder, name))
        merges += 1


class EventLog:
    """The writer; batching events is the caller's choice. The local file takes one writer at a time
    (a second one's half-written line would be cut); segments take any number."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir.rstrip("/")
        fs, path = storage.filesystem(self.run_dir)
        self._local_path = os.path.join(path, FILE) if isinstance(fs, LocalFileSystem) else None
        self._next_segment: int | None = None  # found on the first append
        self._appended = 0

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
            self._next_segment = last_segment(folder) + 1
        while True:
            try:
                with storage.atomic_write(
                    storage.join(folder, segment_name(self._next_segment)), overwrite=False
                ) as handle:
                    handle.write(data)
                break
            except FileExistsError:  # another writer took this number: continue after the newest
                self._next_segment = max(self._next_segment, last_segment(folder)) + 1
        self._next_segment += 1
        self._appended += 1
        if self._appended % FANOUT == 0:
            compact(folder)


def last_segment(folder: str) -> int:
    """The newest segment's number in `folder` (merged or not); -1 if there is none."""
    return max((last for _, last, _ in _objects(storage.listdir(folder))), default=-1)


class EventReader:
    """Reads a run's events as they arrive, oldest first: the plain file from where the last poll
    stopped (a partly written last line waits for the next poll), then every segment not read yet, in
    number order, whether on its own or merged. Lines that are not a JSON object in UTF-8 are skipped
    and counted in `corrupt`."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir.rstrip("/")
        self.corrupt = 0
        self._offset = 0
        self._pending = b""
        self._segments_read: set[int] = set()  # segment numbers
        self._objects_read: set[str] = set()  # names of objects fully read

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
        while True:
            try:
                for first, last, name in _objects(storage.listdir(folder)):
                    if name in self._objects_read or all(
                        n in self._segments_read for n in range(first, last + 1)
                    ):
                        self._objects_read.add(name)
                        continue
                    for number, data in _segments(name, storage.read_bytes(storage.join(folder, name))):
                        if number not in self._segments_read:
                            events += self._decode(data.split(b"\n"))
                            self._segments_read.add(number)
                    self._objects_read.add(name)
                return events
            except FileNotFoundError:  # merged since the listing: the merge is listed now
                continue

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
