"""The hub benchmark at tiny sizes: one point per (batch, publishers), every acknowledged event stored,
positive rates, the JSON report and the table; and it never joins someone else's cluster."""

from __future__ import annotations

import json

import pytest
import ray

from amc_dist.bench import hub as bench_hub
from amc_dist.distributed.cluster import NAMESPACE
from amc_dist.distributed.hub import HUB_NAME
from amc_dist.eventlog import read_events


@pytest.mark.timeout(180)
def test_each_point_counts_stored_events_at_positive_rates(tmp_path, ray_cluster):
    try:
        ray.get_actor(HUB_NAME, namespace=NAMESPACE)
        hub_before = True
    except ValueError:
        hub_before = False

    points = bench_hub.measure(str(tmp_path), batches=[1, 10], publishers=[1, 2], seconds=0.3)

    assert [(p["batch"], p["publishers"]) for p in points] == [(1, 1), (10, 1), (1, 2), (10, 2)]
    for p in points:
        assert set(p) == {"batch", "publishers", "events", "calls", "seconds", "events_per_s", "calls_per_s",
                          "ms_per_call"}  # fmt: skip
        assert p["events"] == p["calls"] * p["batch"] > 0  # every event id is new: nothing dropped
        assert p["seconds"] >= 0.3 and p["events_per_s"] > 0 and p["ms_per_call"] > 0
        assert p["events_per_s"] == pytest.approx(p["events"] / p["seconds"])
        stored = read_events(str(tmp_path / "runs" / f"b{p['batch']}-p{p['publishers']}"))
        assert len(stored) == p["events"]  # in the event log, not only acknowledged
        assert len({e["id"] for e in stored}) == p["events"]
    try:  # a hub the benchmark created is gone; one that was there stays
        ray.get_actor(HUB_NAME, namespace=NAMESPACE)
        hub_after = True
    except ValueError:
        hub_after = False
    assert hub_after == hub_before


@pytest.mark.timeout(120)
def test_the_command_prints_a_table_and_writes_json(tmp_path, capsys, ray_cluster):
    out = tmp_path / "hub.json"
    assert bench_hub.main(["--batches", "5", "--publishers", "1", "--seconds", "0.2", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert {k: report[k] for k in ("storage", "ray", "seconds_per_point")} == {
        "storage": "local",
        "ray": "attached",  # the session's Ray was already up; alone it starts an embedded one
        "seconds_per_point": 0.2,
    }
    assert report["ray_start_s"] >= 0 and report["cpus"] >= 1
    [point] = report["points"]
    assert (point["batch"], point["publishers"]) == (5, 1) and point["events_per_s"] > 0
    table = capsys.readouterr().out
    assert "events/s" in table and f"{point['events_per_s']:.0f}" in table


def test_it_refuses_a_cluster_address(monkeypatch, capsys):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    with pytest.raises(SystemExit):
        bench_hub.main(["--seconds", "0.1"])
    assert "unset RAY_ADDRESS" in capsys.readouterr().err


def test_bad_lists_are_rejected(capsys):
    with pytest.raises(SystemExit):
        bench_hub.main(["--batches", "0,10"])
    assert "positive integers" in capsys.readouterr().err
