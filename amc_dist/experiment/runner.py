"""Run the experiment's steps in dependency order in this process, skipping completed ones.

A step's completion marker is written only after its outputs, so rerunning with the same run id
resumes after the last completed step (and a training step resumes after its last complete epoch).
"""

from __future__ import annotations

from collections.abc import Iterable

from amc_dist.config import Config
from amc_dist.events import EventSink, event, ignore
from amc_dist.experiment.amc import Context, build_graph
from amc_dist.experiment.graph import Graph
from amc_dist.experiment.workspace import Workspace


def selected_steps(graph: Graph, only: Iterable[str] | None) -> list[str]:
    """Names of the steps to run, in order: all, or the named ones and what they depend on."""
    chosen = graph.upstream(only) if only else set(graph.steps)
    return [step.name for step in graph if step.name in chosen]


def run_experiment(
    config: Config, run_dir: str, *, on_event: EventSink = ignore, only: Iterable[str] | None = None
) -> Workspace:
    workspace = Workspace(run_dir, config)
    workspace.write_config()
    graph = build_graph(config)
    names = selected_steps(graph, only)
    context = Context(workspace, on_event)
    for index, name in enumerate(names, start=1):
        if workspace.is_done(name):
            on_event(event("stage_finished", name, 0, skipped=True, index=index, of=len(names)))
            continue
        step = graph.steps[name]
        try:
            step.run(context)
        except BaseException as exc:
            on_event(event("error", name, 0, message=f"{type(exc).__name__}: {exc}"))
            raise
        workspace.mark_done(name, step.outputs)
    on_event(event("run_finished", "run", len(names)))
    return workspace
