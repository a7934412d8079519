"""`python -m amc_dist.tune` (or `amc tune`): a Ray Tune sweep of alpha, the lambdas and attack
parameters over a base experiment, on the cluster of RAY_ADDRESS / `ray job submit` or an embedded Ray.

The undefended model M0 is trained once for all trials; each trial is a target-hardened cascade scored
on the validation split after every stage. Prints the best trials and writes the best one as a
ready-to-run experiment YAML. `--resume` continues an interrupted sweep of the same name.
"""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.table import Table

from amc_dist import storage
from amc_dist.console import say_error
from amc_dist.distributed.entry import run_on_ray


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--config", required=True, help="a sweep file (see configs/tune/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one sweep-file value, e.g. --set num_samples=4 (repeatable)",
    )
    parser.add_argument("--resume", action="store_true", help="continue the interrupted sweep of this name")
    return parser


def build_parser() -> argparse.ArgumentParser:
    return add_arguments(
        argparse.ArgumentParser(prog="python -m amc_dist.tune", description=__doc__.splitlines()[0])
    )


def best_trials(grid, order_length: int, top: int = 5) -> list[dict]:
    """Trials by their last objective, those that trained every stage first (a stopped trial's model
    is an earlier stage's)."""
    rows = []
    for result in grid:
        if result.metrics and "objective" in result.metrics:
            rows.append({"trial": result.metrics.get("trial_id"), "values": result.config, **result.metrics})
    rows.sort(key=lambda r: (r["stage"] < order_length, r["objective"]))
    return rows[:top]


def sweep(args: argparse.Namespace, console: Console) -> int:
    from amc_dist.distributed.cluster import connect
    from amc_dist.distributed.hub import hub
    from amc_dist.distributed.tuning import normalised, tuner
    from amc_dist.experiment.runner import run_experiment
    from amc_dist.experiment.sweep import load_sweep

    plan = load_sweep(args.config, args.overrides)
    settings, base = plan.settings, plan.base
    storage.configure(base.run.s3_endpoint)
    root = storage.absolute(settings.storage or storage.join(base.run.output, "sweeps"))
    sweep_dir = storage.join(root, settings.name)
    target_dir = storage.join(sweep_dir, "m0")
    with connect():
        hub_index = storage.join(storage.absolute(base.run.output), ".hub", "index.json")
        hub(hub_index)
        console.print(f"sweep [bold]{settings.name}[/] -> {sweep_dir}: M0 first (shared by every trial)")
        run_experiment(base, target_dir, only=["target"])
        target_url = storage.join(target_dir, "models", "target.pt")
        console.print(f"{settings.num_samples} trials over {', '.join(settings.search)}", highlight=False)
        grid = tuner(plan, sweep_dir, target_url, hub_index, resume=args.resume).fit()
    stages = len(plan.order())
    best = best_trials(grid, stages)
    if not best:
        console.print("[red]no trial reported a score[/]")
        return 1
    table = Table(title=f"best trials ({settings.objective} validation error over the cascade's attacks)")
    for column in ("trial", "stages", "objective", "clean", "values"):
        table.add_column(column)
    for row in best:
        values = json.dumps(normalised(row["values"]), default=str)
        table.add_row(row["trial"], f"{row['stage']}/{stages}", f"{100 * row['objective']:.1f}%",
                      f"{100 * row['clean_error']:.1f}%", values)  # fmt: skip
    console.print(table)
    best_yaml = storage.join(sweep_dir, "best.yaml")
    with storage.atomic_write(best_yaml) as handle:
        handle.write(plan.best_config_yaml(normalised(best[0]["values"])).encode())
    with storage.atomic_write(storage.join(sweep_dir, "best_trials.json")) as handle:
        handle.write(json.dumps(best, indent=2, default=str).encode())
    errored = [r for r in grid if r.error is not None]
    if errored:
        console.print(f"[yellow]{len(errored)} trial(s) failed; `--resume` retries them[/]")
    console.print(f"best config: {best_yaml}  (run it: python -m amc_dist.launch --config {best_yaml})")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """The sweep of parsed arguments, with its errors as exit codes (2: a bad sweep file)."""
    return run_on_ray(lambda: _sweep_or_say_why(args))


def _sweep_or_say_why(args: argparse.Namespace) -> int:
    try:
        return sweep(args, Console())
    except FileNotFoundError as exc:  # --resume without a sweep to resume
        say_error("error", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
