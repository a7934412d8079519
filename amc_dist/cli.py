"""The `amc` command line: each subcommand parses its arguments and calls into the core."""

from __future__ import annotations

import argparse
import sys
import time

from rich.console import Console

from amc_dist import storage
from amc_dist.config import Config, ConfigError, load_config


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config (see configs/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. --set training.alpha=0.4 (repeatable)",
    )
    parser.add_argument(
        "--run-id", help="run directory name under run.output (default: config's, or a timestamp)"
    )


def _resolve_run(args: argparse.Namespace) -> tuple[Config, str, str]:
    config = load_config(args.config, args.overrides)
    run_id = args.run_id or config.run.run_id or time.strftime("%Y%m%d-%H%M%S")
    return config, run_id, storage.join(config.run.output, run_id)


def cmd_train(args: argparse.Namespace) -> int:
    """Train and score the undefended target of a config."""
    from amc_dist.checkpoint import save_checkpoint
    from amc_dist.console import ProgressSink
    from amc_dist.events import JsonlSink, Reporter
    from amc_dist.task import load_task
    from amc_dist.training.target import train_target

    config, run_id, run_dir = _resolve_run(args)
    console = Console()
    console.print(f"run [bold]{run_id}[/] -> {run_dir}")
    task = load_task(config.data)
    console.print(
        f"{task.name}: {len(task.train)} training images, validation {len(task.validation)}, "
        f"attack {len(task.attack)}, held-out test {len(task.test)}"
    )
    fs, path = storage.filesystem(run_dir)
    fs.makedirs(path, exist_ok=True)
    metrics = JsonlSink(lambda: fs.open(path + "/metrics.jsonl", "a"))
    try:
        with ProgressSink() as bars:
            model, test_error = train_target(config, task, Reporter(run_id, [metrics, bars]))
        url = storage.join(run_dir, "target.pt")
        save_checkpoint(url, model, config.model_dump(mode="json"), test_error=test_error, run_id=run_id)
    finally:
        metrics.close()
    console.print(f"checkpoint: {url}")
    console.print(f"[bold]clean test error: {100 * test_error:.2f}%[/] on {len(task.test)} held-out images")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="amc", description="Adversarial Model Cascades")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train the undefended target and report its clean test error")
    _add_config_arguments(train)
    train.set_defaults(handler=cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as exc:
        Console(stderr=True).print(f"[red]config error:[/] {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted: no partial checkpoint was written[/]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
