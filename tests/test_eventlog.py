"""The run's event log: durable appends to metrics.jsonl locally, create-only numbered segments on S3,
and one incremental reader for both that survives half-written and corrupt lines."""

import json
import subprocess
import sys

import pytest

from amc_dist import storage
from amc_dist.bench import latency_storage
from amc_dist.eventlog import FANOUT, SEGMENTS, EventLog, EventReader, compact, read_events, segment_name

EVENTS = [{"kind": "stage_started", "stage": "target", "id": i} for i in range(5)]


def test_local_appends_go_to_one_file_in_order(tmp_path):
    run = str(tmp_path / "run")
    log = EventLog(run)
    log.append(EVENTS[:2])
    log.append([])
    EventLog(run).append(EVENTS[2:])  # a restarted writer appends to the same file
    lines = (tmp_path / "run" / "metrics.jsonl").read_bytes().splitlines()
    assert [json.loads(line) for line in lines] == EVENTS
    assert read_events(run) == EVENTS
    assert not (tmp_path / "run" / SEGMENTS).exists()


def test_reader_keeps_a_half_written_line_for_the_next_poll(tmp_path):
    path = tmp_path / "metrics.jsonl"
    reader = EventReader(str(tmp_path))
    assert reader.poll() == []
    first, second = (json.dumps(e).encode() + b"\n" for e in EVENTS[:2])
    path.write_bytes(first + second[:7])
    assert reader.poll() == [EVENTS[0]]
    assert reader.poll() == []
    with path.open("ab") as handle:
        handle.write(second[7:])
    assert reader.poll() == [EVENTS[1]]
    assert reader.corrupt == 0


def test_corrupt_lines_are_skipped_and_counted(tmp_path):
    good = [json.dumps(e).encode() for e in EVENTS[:3]]
    bad = [b"not json", b"[1, 2]", b'"a string"', b'{"kind": "\xff\xfe"}', b'{"kind": "eval"']
    lines = [good[0], bad[0], bad[1], good[1], b"", b"   ", bad[2], bad[3], bad[4], good[2]]
    (tmp_path / "metrics.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    reader = EventReader(str(tmp_path))
    assert reader.poll() == EVENTS[:3]
    assert reader.corrupt == len(bad)


def test_a_writer_after_a_crash_mid_line_keeps_its_own_events_whole(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(json.dumps(EVENTS[0]).encode() + b'\n{"kind": "prog')  # the last writer died here
    EventLog(str(tmp_path)).append(EVENTS[1:3])
    reader = EventReader(str(tmp_path))
    assert reader.poll() == EVENTS[:3]
    assert reader.corrupt == 1


def test_a_replaced_file_is_read_from_its_start(tmp_path):
    reader = EventReader(str(tmp_path))
    EventLog(str(tmp_path)).append(EVENTS[:3])
    assert reader.poll() == EVENTS[:3]
    (tmp_path / "metrics.jsonl").unlink()
    EventLog(str(tmp_path)).append(EVENTS[3:4])
    assert reader.poll() == EVENTS[3:4]


def test_segments_on_s3_are_numbered_never_overwritten_and_read_in_order(s3_run):
    reader = EventReader(s3_run)
    assert reader.poll() == []
    log = EventLog(s3_run)
    log.append(EVENTS[:2])
    assert reader.poll() == EVENTS[:2]
    log.append(EVENTS[2:3])
    EventLog(s3_run).append(EVENTS[3:4])  # a restarted writer continues after the newest segment
    folder = storage.join(s3_run, SEGMENTS)
    assert storage.listdir(folder) == [segment_name(n) for n in range(3)] == [
        "000000000000.jsonl", "000000000001.jsonl", "000000000002.jsonl",
    ]  # fmt: skip
    log.append(EVENTS[4:])  # its number was taken by the other writer: it moves past it
    assert storage.listdir(folder)[-1] == "000000000003.jsonl"
    assert reader.poll() == EVENTS[2:]
    assert reader.poll() == []
    assert read_events(s3_run) == EVENTS
    assert not storage.exists(storage.join(s3_run, "metrics.jsonl"))


def test_segment_reader_skips_corrupt_lines_and_files_that_are_not_segments(s3_run):
    folder = storage.join(s3_run, SEGMENTS)
    with storage.atomic_write(storage.join(folder, segment_name(7))) as handle:
        handle.write(json.dumps(EVENTS[1]).encode() + b"\nnot json\n")
    with storage.atomic_write(storage.join(folder, segment_name(3))) as handle:
        handle.write(json.dumps(EVENTS[0]).encode())  # no final newline: a segment is whole anyway
    with storage.atomic_write(storage.join(folder, "notes.txt")) as handle:
        handle.write(b"{}\n")
    reader = EventReader(s3_run)
    assert reader.poll() == EVENTS[:2]
    assert reader.corrupt == 1


@pytest.mark.parametrize("module", ["amc_dist.eventlog", "amc_dist.storage"])
def test_importing_it_pulls_in_no_heavy_library(module):
    heavy = ["torch", "ray", "numpy", "textual", "s3fs", "pyarrow"]
    code = f"import sys, {module}; print([m for m in {heavy!r} if m in sys.modules])"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        == "[]\n"
    )


def test_compaction_keeps_few_objects_and_a_polling_reader_sees_each_event_once_in_order(
    tmp_path, monkeypatch
):
    run = latency_storage.url(0, str(tmp_path))  # an object store's interface on local files
    folder = storage.join(run, SEGMENTS)
    log, reader, seen = EventLog(run), EventReader(run), []
    for n in range(FANOUT * FANOUT + 20):  # 276 appends: a tier-2 merge, a tier-1 one, 4 segments
        log.append([{"id": n, "kind": "progress"}, {"id": f"{n}b", "kind": "progress"}])
        if n % 5 == 0:
            seen += reader.poll()
    seen += reader.poll()
    expected = [i for n in range(FANOUT * FANOUT + 20) for i in (n, f"{n}b")]
    assert [e["id"] for e in seen] == expected and reader.corrupt == 0
    assert len(storage.listdir(folder)) == 1 + 1 + 4 and [e["id"] for e in read_events(run)] == expected
    # a reader whose listing is taken just before a merge removes what it listed lists again
    for n in range(FANOUT):
        EventLog(run).append([{"id": f"late-{n}", "kind": "progress"}])
    listdir, late = storage.listdir, EventReader(run)

    def stale_listing(url):
        names = listdir(url)
        if url == folder and stale_listing.merged is None:
            stale_listing.merged = 0  # compact lists too
            stale_listing.merged = compact(folder)
        return names

    stale_listing.merged = None
    monkeypatch.setattr(storage, "listdir", stale_listing)
    assert [e["id"] for e in late.poll()] == expected + [f"late-{n}" for n in range(FANOUT)]
    assert stale_listing.merged >= 1 and late.poll() == []
