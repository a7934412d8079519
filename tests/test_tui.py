"""amc-tui folds a run's events into its tables, live, from a growing metrics.jsonl."""

import asyncio
import json

from amc_tui.app import Dashboard
from amc_tui.client import MetricsFileClient
from amc_tui.state import RunState

EVENTS = [
    {"run_id": "r1", "kind": "stage_started", "stage": "target", "step": 0, "total_steps": 10},
    {"run_id": "r1", "kind": "progress", "stage": "target", "step": 4, "epoch": 1, "loss": 0.52},
    {"run_id": "r1", "kind": "eval", "stage": "target", "step": 5, "epoch": 1, "setting": "whitebox",
     "attack": "fgsm", "error_rate": 0.25, "n": 100},
]  # fmt: skip


def write(path, events, tail=""):
    with path.open("a") as handle:
        handle.writelines(json.dumps(e) + "\n" for e in events)
        handle.write(tail)


def test_client_tails_the_file_and_waits_for_partial_lines(tmp_path):
    client = MetricsFileClient(tmp_path)
    assert client.poll() == []
    path = tmp_path / "metrics.jsonl"
    write(path, EVENTS[:2], tail='{"run_id": "r1", "kind": "ev')
    assert [e["kind"] for e in client.poll()] == ["stage_started", "progress"]
    with path.open("a") as handle:
        handle.write(
            'al", "stage": "s", "setting": "clean", "attack": "none", "error_rate": 0.1}\nnot json\n'
        )
    assert [e["kind"] for e in client.poll()] == ["eval"]
    assert client.poll() == []


def test_state_keeps_latest_error_per_stage_setting_attack():
    state = RunState()
    for event in EVENTS:
        state.apply(event)
    state.apply({**EVENTS[2], "epoch": 2, "error_rate": 0.125})
    state.apply({"kind": "stage_finished", "stage": "target", "step": 10})
    assert state.run_id == "r1"
    assert state.errors == {("target", "whitebox", "fgsm"): (0.125, 100, 2)}
    assert state.stages["target"].finished and state.stages["target"].step == 10


def test_dashboard_shows_rows_as_events_arrive(tmp_path):
    path = tmp_path / "metrics.jsonl"
    write(path, EVENTS[:2])

    async def scenario():
        app = Dashboard(MetricsFileClient(path), interval=0.05)
        async with app.run_test() as pilot:
            await pilot.pause()
            errors = app.query_one("#errors")
            assert errors.row_count == 0 and app.query_one("#stages").row_count == 1
            write(path, EVENTS[2:])
            await pilot.pause(0.3)
            assert errors.row_count == 1
            assert [str(c) for c in errors.get_row_at(0)] == [
                "target",
                "whitebox",
                "fgsm",
                "25.00",
                "100",
                "1",
            ]
            assert "r1" in app.title

    asyncio.run(scenario())
