"""The metrics hub: duplicates from retried calls are dropped, every batch is in the run's event log
before the call returns, calls that arrive together are stored by one write, and a restarted hub
reloads every run it knew from storage."""

import asyncio
import threading
import time

import pytest
import ray

from amc_dist.distributed.hub import HubSink, MetricsHub, hub
from amc_dist.eventlog import EventLog, read_events


def _events(run_id, n, start=0):
    return [
        {"id": f"src-{i}", "run_id": run_id, "kind": "progress", "time": float(i)} for i in range(start, n)
    ]


def publish(hub_state, *args):
    return asyncio.run(hub_state.publish(*args))


def test_duplicates_are_dropped_and_a_restarted_hub_reloads(tmp_path):
    index = str(tmp_path / "hub" / "index.json")
    first = MetricsHub(index)
    run_a, run_b = str(tmp_path / "a"), str(tmp_path / "b")
    assert publish(first, "a", run_a, _events("a", 3)) == 3
    assert publish(first, "a", run_a, _events("a", 5)) == 2  # a retried batch: only the new events count
    assert publish(first, "b", run_b, _events("b", 1)) == 1
    assert [e["id"] for e in read_events(run_a)] == [f"src-{i}" for i in range(5)]  # stored, in order
    restarted = MetricsHub(index)
    assert {r["run_dir"]: (r["run_id"], r["events"]) for r in restarted.runs()} == {
        run_a: ("a", 5),
        run_b: ("b", 1),
    }
    assert restarted.events("a", since=3) == first.events("a", since=3) == _events("a", 5, start=3)
    assert publish(restarted, "a", run_a, _events("a", 6)) == 1
    assert len(read_events(run_a)) == 6
    with pytest.raises(KeyError, match="no run 'zzz'"):
        restarted.events("zzz")
    other = str(tmp_path / "elsewhere" / "a")  # the same run id in another storage is another run
    assert publish(restarted, "a", other, _events("a", 2)) == 2
    assert len(restarted.events(run_a)) == 6 and len(restarted.events(other)) == 2
    with pytest.raises(KeyError, match="2 runs have that id"):
        restarted.events("a")


@pytest.mark.timeout(120)
def test_the_hub_actor_takes_batches_from_a_sink(tmp_path, ray_cluster):
    handle = hub(str(tmp_path / "index.json"))
    sink = HubSink(handle, "sink-run", str(tmp_path / "run"), every=60)
    for e in _events("sink-run", 3):
        sink(e)  # progress events wait for the next flush
    sink({"id": "x", "kind": "eval", "run_id": "sink-run"})  # anything else goes at once, with the rest
    assert [e["id"] for e in ray.get(handle.events.remote("sink-run"))] == ["src-0", "src-1", "src-2", "x"]
    sink(_events("sink-run", 4)[3])
    assert len(ray.get(handle.events.remote("sink-run"))) == 4
    sink.close()
    assert ray.get(handle.events.remote("sink-run", since=4)) == [_events("sink-run", 4)[3]]
    assert len(read_events(str(tmp_path / "run"))) == 5


def test_calls_that_arrive_during_a_write_are_stored_by_the_next_one(tmp_path, monkeypatch):
    """40 publishers call at once while each write takes 50 ms: far fewer writes than calls, each call
    returns only once its events are in the log, retried copies count once and wait for their write."""
    writes, original = [], EventLog.append

    def slow_append(log, events):
        time.sleep(0.05)
        original(log, events)
        writes.append([e["id"] for e in events])

    monkeypatch.setattr(EventLog, "append", slow_append)
    state, run = MetricsHub(str(tmp_path / "index.json")), str(tmp_path / "run")
    stored_at_return = {}

    async def publisher(p):
        counts = []
        for n in range(3):
            batch = [{"id": f"p{p}-{n}-{k}", "kind": "progress"} for k in range(2)]
            counts.append(await state.publish("r", run, batch))
            stored_at_return[p, n] = {e["id"] for e in read_events(run)} >= {e["id"] for e in batch}
        return counts

    async def everyone():
        first = [publisher(p) for p in range(40)]
        retry = state.publish("r", run, [{"id": "p0-0-0", "kind": "progress"}])  # while p0's write is open
        return await asyncio.gather(*first, retry)

    *counts, retried = asyncio.run(everyone())
    assert counts == [[2, 2, 2]] * 40 and retried == 0
    assert all(stored_at_return.values()) and len(stored_at_return) == 120
    ids = [e["id"] for e in read_events(run)]
    assert sorted(ids) == sorted(f"p{p}-{n}-{k}" for p in range(40) for n in range(3) for k in range(2))
    for p in range(40):  # each publisher's events in the order it sent them
        own = [i for i in ids if i.startswith(f"p{p}-")]
        assert own == [f"p{p}-{n}-{k}" for n in range(3) for k in range(2)]
    assert len(writes) <= 10  # 120 calls; at least 3 rounds, each about one write
    assert [i for w in writes for i in w] == ids == [e["id"] for e in state.events("r")]


def test_a_failed_write_fails_its_calls_and_a_retry_stores_them(tmp_path, monkeypatch):
    original, failing = EventLog.append, threading.Event()

    def flaky_append(log, events):
        if failing.is_set():
            raise OSError("storage is gone")
        original(log, events)

    monkeypatch.setattr(EventLog, "append", flaky_append)
    state, run = MetricsHub(str(tmp_path / "index.json")), str(tmp_path / "run")
    failing.set()
    with pytest.raises(OSError, match="storage is gone"):
        publish(state, "r", run, _events("r", 2))
    assert state.events("r") == [] and read_events(run) == []
    failing.clear()
    assert publish(state, "r", run, _events("r", 3)) == 3  # the retried events are new again
    assert read_events(run) == _events("r", 3)
