"""The `amc` command line: each subcommand parses its arguments and calls into the core."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Iterator

from rich.console import Console

from amc_dist import storage
from amc_dist.config import ConfigError, load_config
from amc_dist.console import ProgressSink, reporting_errors
from amc_dist.events import Reporter
from amc_dist.experiment.wiring import RunSpec, reporting, resolve_run


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


def _resolve_run(args: argparse.Namespace) -> RunSpec:
    return resolve_run(args.config, args.overrides, args.run_id)


@contextlib.contextmanager
def _reporting(run: RunSpec) -> Iterator[Reporter]:
    """Events to the run's metrics.jsonl and to progress bars on the terminal."""
    with ProgressSink() as bars, reporting(run, bars) as reporter:
        yield reporter


def cmd_train(args: argparse.Namespace) -> int:
    """Train and score the undefended target of a config."""
    from amc_dist.checkpoint import save_checkpoint
    from amc_dist.evaluation.clean import error_rate
    from amc_dist.experiment.steps import clean_validation
    from amc_dist.task import load_task
    from amc_dist.training.target import train_target

    run = _resolve_run(args)
    config, run_id, run_dir = run.config, run.run_id, run.run_dir
    console = Console()
    console.print(f"run [bold]{run_id}[/] -> {run_dir}")
    task = load_task(config.data)
    console.print(
        f"{task.name}: {len(task.train)} training images, validation {len(task.validation)}, "
        f"attack {len(task.attack)}, held-out test {len(task.test)}"
    )
    with _reporting(run) as reporter:
        evaluate = clean_validation(task, config.training.eval_size)
        model = train_target(config, task, reporter, evaluate=evaluate)
        test_error = error_rate(model, task.test.x, task.test.y)
        url = storage.join(run_dir, "target.pt")
        save_checkpoint(url, model, config.model_dump(mode="json"), test_error=test_error, run_id=run_id)
    console.print(f"checkpoint: {url}")
    console.print(f"[bold]clean test error: {100 * test_error:.2f}%[/] on {len(task.test)} held-out images")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The whole experiment as a graph of steps; completed steps of the same run id are skipped."""
    from amc_dist.experiment.plan import build_graph
    from amc_dist.experiment.runner import run_experiment, selected_steps
    from amc_dist.experiment.workspace import Workspace

    run = _resolve_run(args)
    config, run_id, run_dir = run.config, run.run_id, run.run_dir
    console = Console()
    graph = build_graph(config)
    names = selected_steps(graph, args.only)
    if args.list:
        workspace = Workspace(run_dir, config)
        for name in names:
            mark = "done" if workspace.is_done(name) else "todo"
            console.print(f"{mark}  {name:28} {graph.steps[name].description}", highlight=False)
        return 0
    console.print(f"run [bold]{run_id}[/] -> {run_dir}: {len(names)} steps")
    with _reporting(run) as reporter:
        workspace = run_experiment(config, run_dir, on_event=reporter, only=args.only)
    if storage.exists(workspace.url("results.md")):
        console.print(storage.read_bytes(workspace.url("results.md")).decode(), highlight=False)
    console.print(f"results: {workspace.url('results.json')}")
    return 0


def _load_for_evaluation(args: argparse.Namespace):
    """The model and config of `amc evaluate`: an amc-dist checkpoint carries its config; a plain state
    dict (a user's model) needs --config, whose model.target names its architecture."""
    from amc_dist.config import apply_overrides, validate_config

    payload = _checkpoint_payload(args.checkpoint)
    if payload is None and not args.config:
        raise ConfigError(f"{args.checkpoint} is a plain state dict: give --config to say what it is")
    if args.config:
        config = load_config(args.config, args.overrides)
    else:
        raw = apply_overrides(payload["config"], args.overrides)
        config = validate_config(
            raw, f"{args.checkpoint} (its config{' with --set' if args.overrides else ''})"
        )
    return config, _state_dict(args.checkpoint, payload)


def _checkpoint_payload(path: str) -> dict | None:
    """An amc-dist checkpoint's payload (weights and config), or None for a plain state dict."""
    from amc_dist.checkpoint import load_checkpoint

    try:
        return load_checkpoint(path)
    except ValueError:
        return None


def _state_dict(path: str, payload: dict | None) -> dict:
    """The weights of an amc-dist checkpoint (its `payload`) or of a plain state dict file."""
    import io

    import torch

    if payload is not None:
        return payload["state_dict"]
    return torch.load(io.BytesIO(storage.read_bytes(path)), map_location="cpu", weights_only=True)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """A robustness report for one saved model: clean, every attack, strong PGD, squeezing, smell tests."""
    from amc_dist.evaluation.report import evaluate_model, single_model_results, write_report
    from amc_dist.models import build_model_for
    from amc_dist.task import load_task

    config, state = _load_for_evaluation(args)
    task = load_task(config.data)
    model = build_model_for(config.model.target, task.shape, task.num_classes, **config.model.target_kwargs)
    model.load_state_dict(state)
    proxy = None
    if args.proxy:  # the attacker's proxy (model.proxy architecture), e.g. a run's models/p2.<row>.pt
        proxy = build_model_for(config.model.proxy, task.shape, task.num_classes, **config.model.proxy_kwargs)
        proxy.load_state_dict(_state_dict(args.proxy, _checkpoint_payload(args.proxy)))
        proxy.eval()
    size = config.experiment.eval_size
    split = task.attack if size is None else task.attack.head(size)
    name = args.name or args.checkpoint.rstrip("/").rsplit("/", 1)[-1].removesuffix(".pt")
    out = args.out or f"{args.checkpoint.removesuffix('.pt')}-evaluation"
    console = Console()
    console.print(f"evaluating [bold]{name}[/] on {len(split)} attack-split images of {task.name} -> {out}")
    with _reporting(RunSpec(config, name, out)) as reporter:
        evaluation = evaluate_model(
            model,
            split.x,
            split.y,
            config,
            proxy=proxy,
            on_event=reporter,
            name=name,
            test=(task.test.x, task.test.y),
        )
    results = single_model_results(task.name, evaluation)
    write_report(results, out)
    console.print(storage.read_bytes(storage.join(out, "results.md")).decode(), highlight=False)
    return 0


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def _positive(text: str) -> float:
    """A positive number, or a fraction such as 8/255."""
    top, _, bottom = text.partition("/")
    try:
        value = float(top) / float(bottom or 1)
    except (ValueError, ZeroDivisionError):
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number or fraction (8/255), got {text!r}")
    return value


def _device(text: str) -> str:
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {text!r}")
    return text


def cmd_union(args: argparse.Namespace) -> int:
    """Union robustness of a finished run's models (Maini et al. 2020's threat model)."""
    from amc_dist.evaluation.union import UnionThreats, union_table
    from amc_dist.experiment.union_run import union_run

    given = {
        "apgd_iter": args.apgd_iter,
        "apgd_restarts": args.restarts,
        "apgd_targets": args.targets,
        "square_queries": args.square_queries,
        "linf_eps": args.linf_eps,
        "l2_eps": args.l2_eps,
        "l1_eps": args.l1_eps,
    }
    given = {k: v for k, v in given.items() if v is not None}
    if args.no_ead:
        given["l1_attack"] = None
    payload = union_run(
        args.run,
        rows=args.rows,
        images=args.images,
        preset=args.preset,
        overrides=given,
        device=args.device,
        out=args.out,
        skip_missing=args.skip_missing,
    )
    threats = UnionThreats(**payload["threats"])
    Console().print(union_table(payload["rows"], threats, payload["images"]), highlight=False)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """`attacks`: ours against the peer libraries; `ray`: Ray's overhead and the launched demo (options
    after the name go to the benchmark)."""
    import importlib

    return importlib.import_module(f"amc_dist.bench.{args.what}").main(args.bench_args)


def cmd_tune(args: argparse.Namespace) -> int:
    """A Ray Tune sweep: the same as `python -m amc_dist.tune`."""
    from amc_dist.tune import run

    return run(args)


def cmd_figure(args: argparse.Namespace) -> int:
    """The paper's Figure 1: MNIST test images and their FGSM, EAP, PGM and VAP versions, with predictions.

    The LeNet comes from `--checkpoint` (an amc-dist checkpoint of a LeNet) or, without one, is trained for
    one epoch on MNIST first (a few seconds). The first `--images` MNIST test images are shown.
    """
    from amc_dist.bench import mnist_lenet, mnist_test_images
    from amc_dist.checkpoint import load_checkpoint
    from amc_dist.evaluation.figures import paper_attack_figure
    from amc_dist.models import build_model

    if args.checkpoint is None:
        model = mnist_lenet(seed=args.seed)
    else:
        model = build_model("lenet")
        model.load_state_dict(load_checkpoint(args.checkpoint)["state_dict"])
    x, y = mnist_test_images(args.images)
    path = paper_attack_figure(model.eval(), x, y, args.out, seed=args.seed)
    Console().print(f"figure: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="amc", description="Adversarial Model Cascades")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train the undefended target and report its clean test error")
    _add_config_arguments(train)
    train.set_defaults(handler=cmd_train)
    run = commands.add_parser("run", help="run the whole experiment (resumable with the same --run-id)")
    _add_config_arguments(run)
    run.add_argument("--only", nargs="+", metavar="STEP", help="run only these steps and what they need")
    run.add_argument("--list", action="store_true", help="list the steps and whether each is done")
    run.set_defaults(handler=cmd_run)
    evaluate = commands.add_parser("evaluate", help="robustness report for one saved model (ours or yours)")
    evaluate.add_argument("--checkpoint", required=True, help="an amc-dist checkpoint, or a plain state dict")
    evaluate.add_argument(
        "--config", help="config for data, attacks and architecture (default: the checkpoint's)"
    )
    evaluate.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    evaluate.add_argument("--name", help="the model's name in the tables (default: the file name)")
    evaluate.add_argument(
        "--proxy",
        help="an attacker's proxy: a checkpoint of the config's model.proxy, e.g. a run's models/p2.<row>.pt "
        "(black-box errors crafted on it, and the smell tests' transfer check, skipped without one)",
    )
    evaluate.add_argument(
        "--out", help="directory for results.json/.md and figures (default: beside the file)"
    )
    evaluate.set_defaults(handler=cmd_evaluate)
    union = commands.add_parser(
        "union", help="union robustness of a run's models: Linf 0.3, L2 2.0, L1 10 (Maini et al. 2020)"
    )
    union.add_argument("--run", required=True, help="a run directory (local path or fsspec URL)")
    union.add_argument("--rows", nargs="+", help="table rows to evaluate (default: every trained row)")
    union.add_argument(
        "--skip-missing", action="store_true", help="leave out rows with no model yet (a run in progress)"
    )
    union.add_argument(
        "--images", type=_at_least_one, help="attack-split images (default: experiment.eval_size)"
    )
    union.add_argument(
        "--preset", choices=["mnist", "cifar10"], help="budgets: mnist 0.3/2/10, cifar10 8/255/0.5/12 "
        "(Linf/L2/L1; default: the run's dataset's)",
    )  # fmt: skip
    for norm in ("linf", "l2", "l1"):
        union.add_argument(f"--{norm}-eps", type=_positive, help=f"{norm} budget (default: the preset's)")
    union.add_argument("--apgd-iter", type=_at_least_one, default=100, help="APGD iterations per run")
    union.add_argument(
        "--restarts", type=_at_least_one, help="APGD-CE restarts (default: AutoAttack's 1, 5 under L1)"
    )
    union.add_argument(
        "--targets", type=_at_least_one, help="APGD-T target classes (default: AutoAttack's 9, 5 under L1)"
    )
    union.add_argument("--square-queries", type=_at_least_one, help="Square's queries (default 5000)")
    union.add_argument("--no-ead", action="store_true", help="leave EAD out of the L1 suite")
    union.add_argument("--device", type=_device, help="cpu | cuda | cuda:N (default: the run's run.device)")
    union.add_argument("--out", help="directory for union.json and union.md (default: <run>/union)")
    union.set_defaults(handler=cmd_union)
    bench = commands.add_parser("bench", help="benchmarks that print a table and write JSON")
    bench.add_argument(
        "what", choices=["attacks", "ray", "hub", "scaling", "memory"], help="what to benchmark"
    )
    bench.add_argument("bench_args", nargs=argparse.REMAINDER, help="e.g. --quick --out bench.json")
    bench.set_defaults(handler=cmd_bench)
    from amc_dist.tune import add_arguments as tune_arguments

    tune = tune_arguments(
        commands.add_parser("tune", help="Ray Tune sweep of alpha, lambdas, attack parameters")
    )
    tune.set_defaults(handler=cmd_tune)
    figure = commands.add_parser("figure", help="figures")
    figure.add_argument("what", choices=["attacks"], help="Figure 1: attacked MNIST images")
    figure.add_argument("--out", required=True, help="PNG file to write")
    figure.add_argument("--checkpoint", help="an amc-dist LeNet checkpoint (default: train one for an epoch)")
    figure.add_argument("--images", type=int, default=5, help="how many MNIST test images")
    figure.add_argument("--seed", type=int, default=0)
    figure.set_defaults(handler=cmd_figure)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return reporting_errors(lambda: args.handler(args))
    except KeyboardInterrupt:
        Console(stderr=True).print(
            "[yellow]interrupted: nothing half-written was left; rerun with the same --run-id to resume[/]"
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
