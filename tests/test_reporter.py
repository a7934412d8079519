"""The run's reporter: every event stamped once, and run_finished always the last word of a run."""

import threading

from amc_dist.events import Reporter, event
from amc_dist.experiment.wiring import RunningSteps, heartbeat


def test_a_heartbeat_racing_run_finished_never_follows_it():
    """The beat thread stops only after the run's block ends, so it can fire once more after
    run_finished (seen on a loaded CI machine: a log whose last event was a heartbeat)."""
    seen: list[dict] = []
    reporter = Reporter("r", [seen.append])
    reporter(event("run_finished", "run", 0, status="done", failed={}))
    reporter(event("heartbeat", "run", 0, running=[]))
    assert [e["kind"] for e in seen] == ["run_finished"]


def test_heartbeats_flow_while_the_run_lives_and_stop_at_its_end():
    seen: list[dict] = []
    beat = threading.Event()

    def sink(stamped: dict) -> None:
        seen.append(stamped)
        if stamped["kind"] == "heartbeat":
            beat.set()

    reporter = Reporter("r", [sink])
    with heartbeat(reporter, RunningSteps(), every=0.01):
        assert beat.wait(10)
        reporter(event("run_finished", "run", 0, status="done", failed={}))
    kinds = [e["kind"] for e in seen]
    assert kinds[-1] == "run_finished" and "heartbeat" in kinds
    assert len({e["id"] for e in seen}) == len(seen)
