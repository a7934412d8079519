"""The Ray runner on synthetic steps: independent steps overlap, a failure stops only its dependants,
the run ends naming the failed step and its cause, and markers record exactly what completed."""

import sys
import time
from pathlib import Path

import pytest
import ray

from amc_dist.config import load_config
from amc_dist.distributed.runner import StepsFailed, run_graph
from amc_dist.experiment.graph import Graph, Step
from amc_dist.experiment.workspace import Workspace

# Ray workers cannot import this test module: ship its functions by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
TINY = load_config(Path(__file__).parent / "configs" / "tiny.yaml")


@ray.remote(num_cpus=1)
def _call(run):
    return run()


def _sleep(seconds):
    def run():
        start = time.time()
        time.sleep(seconds)
        return start, time.time()

    return run


def _fail():
    raise ValueError("bad weights in step c")


def test_independent_steps_overlap_and_a_failure_stops_only_its_dependants(tmp_path, ray_cluster):
    graph = Graph(
        [
            Step("a", _sleep(1.5)),
            Step("b", _sleep(1.5)),
            Step("c", _fail, ("a",)),
            Step("d", _sleep(0), ("c",)),
            Step("e", _sleep(0), ("b",)),
        ]
    )
    workspace = Workspace(str(tmp_path / "r"), TINY)
    events, times = [], {}

    def submit(step):
        ref = _call.remote(step.run)
        times[step.name] = ref
        return ref

    with pytest.raises(StepsFailed) as failure:
        run_graph(graph, list(graph.steps), workspace, submit, on_event=events.append, max_concurrent=2)
    assert failure.value.failed == {"c": "ValueError: bad weights in step c"}
    assert failure.value.stopped == ["d"]
    assert "c: ValueError: bad weights in step c" in str(failure.value) and "d" in str(failure.value)
    (a_start, a_end), (b_start, b_end) = ray.get(times["a"]), ray.get(times["b"])
    assert a_start < b_end and b_start < a_end  # the two independent steps ran at the same time
    assert {p.name for p in (tmp_path / "r" / "steps").iterdir()} == {"a.done", "b.done", "e.done"}
    kinds = [(e["kind"], e["stage"]) for e in events]
    assert ("step_failed", "c") in kinds and ("step_finished", "e") in kinds
    assert not any(stage == "d" for _, stage in kinds)


def test_the_cap_holds_and_completed_steps_are_skipped(tmp_path, ray_cluster):
    graph = Graph([Step(name, _sleep(0.3)) for name in "abc"])
    workspace = Workspace(str(tmp_path / "r"), TINY)
    workspace.mark_done("a", ())
    running, peak, events = set(), [0], []

    def on_event(e):
        events.append(e)
        if e["kind"] == "step_started":
            running.add(e["stage"])
            peak[0] = max(peak[0], len(running))
        elif e["kind"] == "step_finished":
            running.discard(e["stage"])

    submit = lambda step: _call.remote(step.run)  # noqa: E731
    run_graph(graph, list("abc"), workspace, submit, on_event=on_event, max_concurrent=1)
    assert peak[0] == 1
    assert [e["stage"] for e in events if e["kind"] == "step_started"] == ["b", "c"]
    assert next(e for e in events if e["stage"] == "a")["skipped"] is True
