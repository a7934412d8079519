"""Run the experiment's steps in dependency order in this process, skipping completed ones.

A step's completion marker is written only after its outputs, so rerunning with the same run id
resumes after the last completed step (and a training step resumes after its last complete epoch).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from amc_dist.config import Config
from amc_dist.events import EventSink, event, ignore
from amc_dist.experiment.context import Context
from amc_dist.experiment.graph import Graph
from amc_dist.experiment.plan import build_graph
from amc_dist.experiment.workspace import Workspace


def selected_steps(graph: Graph, only: Iterable[str] | None) -> list[str]:
    """Names of the steps to run, in order: all, or the named ones and what they depend on."""
    chosen = graph.upstream(only) if only else set(graph.steps)
    return [step.name for step in graph if step.name in chosen]


def run_started(config: Config, graph: Graph, names: list[str], attempt: int, runner: str) -> dict[str, Any]:
    """The event that opens a run: its step graph and settings, for a monitor to lay out."""
    steps = [
        {"name": s.name, "needs": list(s.needs), "kind": s.kind, "description": s.description}
        for s in graph
        if s.name in names
    ]
    return event(
        "run_started",
        "run",
        0,
        graph=steps,
        steps=len(names),
        dataset=config.data.name,
        model=config.model.target,
        variants=list(config.experiment.variants),
        order=list(config.cascade.order),
        attacks=list(dict.fromkeys([*config.attacks.whitebox, *config.attacks.blackbox])),
        attempt=attempt,
        runner=runner,
    )


def describe_failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def run_experiment(
    config: Config, run_dir: str, *, on_event: EventSink = ignore, only: Iterable[str] | None = None
) -> Workspace:
    workspace = Workspace(run_dir, config)
    workspace.write_config()
    graph = build_graph(config)
    names = selected_steps(graph, only)
    on_event(run_started(config, graph, names, workspace.next_attempt(), "in-process"))
    context = Context(workspace, on_event)
    for name in names:
        if workspace.is_done(name):
            on_event(event("step_finished", name, 0, skipped=True, seconds=0.0))
            continue
        step, started = graph.steps[name], time.monotonic()
        on_event(event("step_started", name, 0, step_kind=step.kind))
        try:
            step.run(context)
        except BaseException as exc:
            message = describe_failure(exc)
            stopped = sorted(graph.dependants(name) & set(names))
            on_event(event("step_failed", name, 0, message=message, stopped=stopped))
            on_event(event("run_finished", "run", 0, status="failed", failed={name: message}))
            raise
        workspace.mark_done(name, step.outputs)
        on_event(event("step_finished", name, 0, skipped=False, seconds=time.monotonic() - started))
    on_event(event("run_finished", "run", 0, status="done", failed={}))
    return workspace
