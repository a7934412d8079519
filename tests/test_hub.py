"""The metrics hub: duplicates from retried calls are dropped, every batch is in the run's event log
before the call returns, and a restarted hub reloads every run it knew from storage."""

import pytest
import ray

from amc_dist.distributed.hub import HubSink, MetricsHub, hub
from amc_dist.eventlog import read_events


def _events(run_id, n, start=0):
    return [
        {"id": f"src-{i}", "run_id": run_id, "kind": "progress", "time": float(i)} for i in range(start, n)
    ]


def test_duplicates_are_dropped_and_a_restarted_hub_reloads(tmp_path):
    index = str(tmp_path / "hub" / "index.json")
    first = MetricsHub(index)
    run_a, run_b = str(tmp_path / "a"), str(tmp_path / "b")
    assert first.publish("a", run_a, _events("a", 3)) == 3
    assert first.publish("a", run_a, _events("a", 5)) == 2  # a retried batch: only the new events count
    assert first.publish("b", run_b, _events("b", 1)) == 1
    assert [e["id"] for e in read_events(run_a)] == [f"src-{i}" for i in range(5)]  # stored, in order
    restarted = MetricsHub(index)
    assert {r["run_dir"]: (r["run_id"], r["events"]) for r in restarted.runs()} == {
        run_a: ("a", 5),
        run_b: ("b", 1),
    }
    assert restarted.events("a", since=3) == first.events("a", since=3) == _events("a", 5, start=3)
    assert restarted.publish("a", run_a, _events("a", 6)) == 1
    assert len(read_events(run_a)) == 6
    with pytest.raises(KeyError, match="no run 'zzz'"):
        restarted.events("zzz")
    other = str(tmp_path / "elsewhere" / "a")  # the same run id in another storage is another run
    assert restarted.publish("a", other, _events("a", 2)) == 2
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
