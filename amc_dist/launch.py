"""`python -m amc_dist.launch`: the whole experiment on a Ray cluster, resumable by run id.

Submitted with `ray job submit -- python -m amc_dist.launch ...` (or with RAY_ADDRESS set) it joins that
cluster; otherwise it starts an embedded Ray on this machine (loopback only, its own temp dir) and shuts
it down on exit. Same steps, same outputs as `amc run`; steps whose inputs are complete run at once.
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from amc_dist import storage
from amc_dist.config import ConfigError
from amc_dist.console import ProgressSink, say_error
from amc_dist.distributed.entry import run_on_ray
from amc_dist.events import event


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m amc_dist.launch", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML config (see configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value (repeatable)")  # fmt: skip
    parser.add_argument("--run-id", help="run directory name (default: config's, or a timestamp)")
    parser.add_argument("--storage", metavar="URL", help="where runs live: a path or s3://bucket/prefix "
                        "(default: the config's run.output)")  # fmt: skip
    parser.add_argument("--only", nargs="+", metavar="STEP", help="run only these steps and what they need")
    return parser


def launch(args: argparse.Namespace, console: Console) -> int:

    from amc_dist.distributed.admission import check_gpus, node_gpus
    from amc_dist.distributed.cluster import cluster_cpus, connect
    from amc_dist.distributed.hub import HubSink, hub
    from amc_dist.distributed.runner import StepsFailed, StepSubmitter, run_graph
    from amc_dist.experiment.plan import build_graph
    from amc_dist.experiment.runner import run_started, selected_steps
    from amc_dist.experiment.wiring import RunSpec, reporting, resolve_run
    from amc_dist.experiment.workspace import Workspace

    spec = resolve_run(args.config, args.overrides, args.run_id, args.storage)
    run = RunSpec(spec.config, spec.run_id, storage.absolute(spec.run_dir))
    config = run.config
    graph = build_graph(config)
    names = selected_steps(graph, args.only)
    workspace = Workspace(run.run_dir, config)
    workspace.write_config()
    with connect() as how:
        cap = config.ray.max_concurrent_steps or max(1, int(cluster_cpus() // config.ray.cpus_per_worker))
        check_gpus(config, graph, names, node_gpus(), cap)
        where = f"{len(names)} steps on Ray ({how}), up to {cap} at once"
        console.print(f"run [bold]{run.run_id}[/] -> {run.run_dir}: {where}", highlight=False)
        hub_index = storage.join(storage.absolute(config.run.output), ".hub", "index.json")
        sink = HubSink(hub(hub_index), run.run_id, run.run_dir)
        submitter = StepSubmitter(run.run_id, workspace, graph)
        with ProgressSink() as bars, reporting(run, sink, bars, log=False) as reporter:
            reporter(run_started(config, graph, names, workspace.next_attempt(), "ray"))
            try:
                run_graph(graph, names, workspace, submitter, on_event=reporter, max_concurrent=cap)
            except StepsFailed as exc:
                if storage.unreachable(run.run_dir) is not None:
                    raise  # the storage is gone: say that, not which steps it took with it
                reporter(event("run_finished", "run", 0, status="failed", failed=exc.failed))
                sink.flush()
                console.print(f"[red]{exc}[/]", highlight=False)
                console.print("rerun with the same --run-id to resume after the completed steps")
                return 1
            reporter(event("run_finished", "run", 0, status="done", failed={}))
            sink.flush()
    if storage.exists(workspace.url("results.md")):
        console.print(storage.read_bytes(workspace.url("results.md")).decode(), highlight=False)
        console.print(f"results: {workspace.url('results.json')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_on_ray(lambda: _launch_reporting_storage(args))


def _launch_reporting_storage(args: argparse.Namespace) -> int:
    """The launch, with an interrupt or an unreachable storage said plainly."""
    try:
        return launch(args, Console())
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted: rerun with the same --run-id to resume[/]")
        return 130
    except Exception as exc:
        problem = _storage_problem(args)
        if problem is None:
            raise
        say_error(
            f"storage {problem[0]} is unreachable",
            f"{problem[1]} (the run stopped at: {type(exc).__name__}). Steps are marked complete only "
            "after their outputs are stored: rerun with the same --run-id once the storage is back to resume",
        )
        return 1


def _storage_problem(args: argparse.Namespace) -> tuple[str, str] | None:
    """(where, why) when the run's storage does not answer; None when it does (or there is no run)."""
    from amc_dist.experiment.wiring import resolve_run

    try:
        run_dir = resolve_run(args.config, args.overrides, args.run_id, args.storage).run_dir
    except ConfigError:
        return None
    problem = storage.unreachable(run_dir)
    return None if problem is None else (run_dir, problem)


if __name__ == "__main__":
    sys.exit(main())
