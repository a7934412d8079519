"""`amc bench ray`: what Ray costs and what it buys, measured side by side in one run.

1. One cascade stage (`amc_target.1`, PGD on MNIST) in-process, as a plain Ray task, and as a Ray Train
   fit with 1 and 2 workers, on one embedded Ray (its start is reported separately).
2. Crafting a stage's black-box examples on P' locally (its stored weights read once) or
   through calls to the proxy actor.
3. The demo graph (`configs/demo.yaml`) with `amc run` in-process against `python -m amc_dist.launch`,
   each in a fresh process, start-up included (what a user waits for).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from amc_dist.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
STAGE = "amc_target.1"


def _stage_overrides(images: int) -> list[str]:
    return [
        f"data.train_subset={images}",
        "training.epochs=1",
        "training.eval_size=200",
        "cascade.order=[pgd,fgsm,vat,ead]",
        "cascade.epochs_per_stage=1",
    ]


def _step_seconds(run_dir: Path, step: str) -> float:
    """The step's time from its start and finish events (the last attempt)."""
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    start = [e["time"] for e in events if e["kind"] == "step_started" and e["stage"] == step][-1]
    end = [e["time"] for e in events if e["kind"] == "step_finished" and e["stage"] == step][-1]
    return end - start


def bench_stage(work: Path, images: int) -> dict[str, float]:
    """Seconds of one stage in each mode, from a shared trained target."""
    from amc_dist import launch
    from amc_dist.distributed.cluster import connect
    from amc_dist.experiment.runner import run_experiment

    overrides = _stage_overrides(images)
    config = load_config(CONFIGS / "demo.yaml", overrides)
    base = work / "base" / "s"
    run_experiment(config, str(base), only=["target"])
    out: dict[str, float] = {}

    def fresh(mode: str) -> Path:
        shutil.copytree(base, work / mode / "s")
        return work / mode / "s"

    run_dir = fresh("in_process")
    started = time.perf_counter()
    run_experiment(config, str(run_dir), only=[STAGE])
    out["in_process"] = time.perf_counter() - started
    started = time.perf_counter()
    with connect():
        out["ray_start"] = time.perf_counter() - started
        for mode, ray_overrides in {
            # every mode uses both cores, as the in-process run does (Ray gives a step as many torch
            # threads as it has CPUs)
            "ray_task": ["ray.trainer=task", "ray.cpus_per_worker=2"],
            "ray_train_1": ["ray.trainer=train", "ray.num_workers=1", "ray.cpus_per_worker=2"],
            "ray_train_2": ["ray.trainer=train", "ray.num_workers=2", "ray.cpus_per_worker=1"],
        }.items():
            run_dir = fresh(mode)
            sets = [a for o in [*overrides, *ray_overrides] for a in ("--set", o)]
            args = ["--config", str(CONFIGS / "demo.yaml"), "--storage", str(run_dir.parent), "--run-id", "s"]
            if launch.main([*args, *sets, "--only", STAGE]) != 0:
                raise RuntimeError(f"the {mode} stage failed")
            out[mode] = _step_seconds(run_dir, STAGE)
    return out


def bench_crafting(work: Path, images: int, batches: int = 10, batch: int = 128) -> dict[str, float]:
    """Milliseconds per batch of black-box PGD examples crafted on P' in the training process (its stored
    weights read once per stage) against through calls to its proxy actor (what a stage would pay per
    batch)."""
    import ray
    import torch

    from amc_dist.attacks import build_attacks
    from amc_dist.distributed.actors import proxy_actor
    from amc_dist.distributed.cluster import connect
    from amc_dist.distributed.context import RayContext
    from amc_dist.distributed.hub import hub
    from amc_dist.experiment.runner import run_experiment
    from amc_dist.experiment.workspace import Workspace

    config = load_config(CONFIGS / "demo.yaml", _stage_overrides(images))
    run_dir = work / "p"
    run_experiment(config, str(run_dir), only=["proxy.1"])
    x = torch.rand(batches, batch, 1, 28, 28)
    with connect():
        hub(str(work / "hub.json"))
        ctx = RayContext(Workspace(str(run_dir), config), lambda e: None, "bench")
        started = time.perf_counter()
        model = ctx.proxy_model("proxy.1")  # the read a stage makes once
        pull = time.perf_counter() - started
        attack = build_attacks(config.attacks.blackbox, ["pgd"])["pgd"]
        started = time.perf_counter()
        for xb in x:
            attack(model, xb)
        local = (time.perf_counter() - started) / batches
        actor = proxy_actor("bench", str(run_dir), config, "proxy.1")
        ray.get(actor.craft.remote("pgd", x[0]))  # warm: the actor loads its weights once
        started = time.perf_counter()
        for xb in x:
            ray.get(actor.craft.remote("pgd", xb))
        remote = (time.perf_counter() - started) / batches
        ray.kill(actor)
    return {
        "load_weights_ms": 1000 * pull,
        "local_ms_per_batch": 1000 * local,
        "actor_ms_per_batch": 1000 * remote,
    }


def bench_demo(work: Path, extra: list[str]) -> dict[str, float]:
    """Wall seconds of the demo graph in-process and launched on an embedded Ray, fresh processes."""
    out = {}
    commands = {
        "amc_run": [sys.executable, "-m", "amc_dist.cli", "run"],
        "launch": [sys.executable, "-m", "amc_dist.launch"],
    }
    for name, command in commands.items():
        sets = [a for o in [f"run.output={work / name}", *extra] for a in ("--set", o)]
        started = time.perf_counter()
        subprocess.run([*command, "--config", str(CONFIGS / "demo.yaml"), *sets], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        out[name] = time.perf_counter() - started
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="amc bench ray", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small stage and a smaller demo (minutes)")
    parser.add_argument("--stage-images", type=int, help="training images of the stage (default 30000)")
    parser.add_argument("--skip-demo", action="store_true", help="only the stage benchmark")
    parser.add_argument("--out", help="write the JSON report here")
    args = parser.parse_args(argv)
    images = args.stage_images or (3000 if args.quick else 30000)
    with tempfile.TemporaryDirectory(prefix="amc-bench-ray-") as directory:
        work = Path(directory)
        report = {"stage": bench_stage(work / "stage", images), "stage_images": images}
        report["crafting"] = bench_crafting(work / "crafting", images)
        if not args.skip_demo:
            report["demo"] = bench_demo(work / "demo", ["data.train_subset=500"] if args.quick else [])
    stage, table = report["stage"], Table(title="Ray overhead (seconds; ratio to in-process)")
    table.add_column("measurement")
    table.add_column("seconds", justify="right")
    table.add_column("ratio", justify="right")
    for mode in ("in_process", "ray_task", "ray_train_1", "ray_train_2"):
        table.add_row(
            f"stage {STAGE}: {mode}", f"{stage[mode]:.1f}", f"{stage[mode] / stage['in_process']:.2f}"
        )
    table.add_row("embedded Ray start", f"{stage['ray_start']:.1f}", "")
    craft = report["crafting"]
    table.add_row("P' weights read from storage (ms, once a stage)", f"{craft['load_weights_ms']:.0f}", "")
    table.add_row("black-box PGD batch crafted locally (ms)", f"{craft['local_ms_per_batch']:.0f}", "1.00")
    table.add_row("... through the proxy actor (ms)", f"{craft['actor_ms_per_batch']:.0f}",
                  f"{craft['actor_ms_per_batch'] / craft['local_ms_per_batch']:.2f}")  # fmt: skip
    if "demo" in report:
        demo = report["demo"]
        table.add_row("demo: amc run (in-process)", f"{demo['amc_run']:.1f}", "1.00")
        table.add_row(
            "demo: launch (embedded Ray)", f"{demo['launch']:.1f}", f"{demo['launch'] / demo['amc_run']:.2f}"
        )
    Console().print(table)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
