"""The hub benchmark at tiny sizes: one point per (hub, batch, publishers), every acknowledged event
stored, the group-committing hub writing fewer objects than calls behind a per-write latency and the
serial one one per call, the JSON report and the table; and it never joins someone else's cluster."""

from __future__ import annotations

import json

import pytest
import ray

from amc_dist import storage
from amc_dist.bench import hub as bench_hub
from amc_dist.bench import latency_storage
from amc_dist.distributed.cluster import NAMESPACE
from amc_dist.distributed.hub import HUB_NAME
from amc_dist.eventlog import SEGMENTS, last_segment, read_events


@pytest.mark.timeout(180)
def test_each_point_counts_stored_events_at_positive_rates(tmp_path, ray_cluster):
    try:
        ray.get_actor(HUB_NAME, namespace=NAMESPACE)
        hub_before = True
    except ValueError:
        hub_before = False

    work = latency_storage.url(20, str(tmp_path))  # every write 20 ms: the calls must group
    points = bench_hub.measure(
        work, batches=[1, 10], publishers=[1, 12], seconds=0.3, hubs=["group", "serial"]
    )

    assert [(p["hub"], p["batch"], p["publishers"]) for p in points] == [
        (hub, batch, count) for hub in ("group", "serial") for count in (1, 12) for batch in (1, 10)
    ]
    for p in points:
        assert set(p) == {"hub", "batch", "publishers", "events", "calls", "seconds", "events_per_s",
                          "calls_per_s", "wait_ms", "wait_p95_ms"}  # fmt: skip
        assert p["events"] == p["calls"] * p["batch"] > 0  # every event id is new: nothing dropped
        assert p["seconds"] >= 0.3 and p["events_per_s"] > 0 and p["wait_ms"] >= 20
        assert p["events_per_s"] == pytest.approx(p["events"] / p["seconds"])
        stored = read_events(storage.join(work, p["hub"], "runs", f"b{p['batch']}-p{p['publishers']}"))
        assert len(stored) == p["events"]  # in the event log, not only acknowledged
        assert len({e["id"] for e in stored}) == p["events"]
    segments = {
        p["hub"]: 1 + last_segment(storage.join(work, p["hub"], "runs", "b1-p12", SEGMENTS)) for p in points
    }
    calls = {p["hub"]: p["calls"] for p in points if (p["batch"], p["publishers"]) == (1, 12)}
    assert segments["serial"] == calls["serial"]  # one write per call
    assert segments["group"] < calls["group"] / 2  # 12 publishers, one write for the calls that wait together
    try:  # the benchmark's hubs are its own: the cluster's hub is there after it as before
        ray.get_actor(HUB_NAME, namespace=NAMESPACE)
        hub_after = True
    except ValueError:
        hub_after = False
    assert hub_after == hub_before


@pytest.mark.timeout(120)
def test_the_command_prints_a_table_and_writes_json(tmp_path, capsys, ray_cluster):
    out = tmp_path / "hub.json"
    args = ["--batches", "5", "--publishers", "1", "--seconds", "0.2", "--hubs", "group", "--out", str(out)]
    assert bench_hub.main(args) == 0
    report = json.loads(out.read_text())
    assert {k: report[k] for k in ("storage", "write_latency_ms", "ray", "seconds_per_point")} == {
        "storage": "local",
        "write_latency_ms": 0.0,
        "ray": "attached",  # the session's Ray was already up; alone it starts an embedded one
        "seconds_per_point": 0.2,
    }
    assert report["ray_start_s"] >= 0 and report["cpus"] >= 1
    [point] = report["points"]
    assert (point["hub"], point["batch"], point["publishers"]) == ("group", 5, 1) and point[
        "events_per_s"
    ] > 0
    table = capsys.readouterr().out
    assert "events/s" in table and f"{point['events_per_s']:.0f}" in table


def test_it_refuses_a_cluster_address(monkeypatch, capsys):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    with pytest.raises(SystemExit):
        bench_hub.main(["--seconds", "0.1"])
    assert "unset RAY_ADDRESS" in capsys.readouterr().err


def test_bad_arguments_are_rejected(capsys):
    with pytest.raises(SystemExit):
        bench_hub.main(["--batches", "0,10"])
    assert "positive integers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench_hub.main(["--hubs", "group,fast"])
    assert "expected some of group,serial" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench_hub.main(["--storage", "s3://b/p", "--write-latency-ms", "30"])
    assert "applies to local storage" in capsys.readouterr().err
