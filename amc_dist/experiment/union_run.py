"""`amc union`: the union robustness (evaluation/union.py) of a finished run's models, on the run's attack
split, written beside the run as `union/union.json` and `union/union.md`."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from amc_dist import storage
from amc_dist.config import ConfigError
from amc_dist.evaluation.union import PRESETS, UnionThreats, stage_count, union_errors, union_table
from amc_dist.experiment.rows import model_rows
from amc_dist.experiment.workspace import Workspace
from amc_dist.models import build_model_for
from amc_dist.task import load_task
from amc_dist.tensors import resolve_device


def union_run(
    run_dir: str,
    *,
    rows: list[str] | None = None,
    images: int | None = None,
    threats: UnionThreats | None = None,
    preset: str | None = None,
    overrides: dict[str, Any] | None = None,
    device: str | None = None,
    out: str | None = None,
    skip_missing: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    """Evaluate `rows` (default: every trained row) of the run in `run_dir` on the first `images` images of
    its attack split (default: the run's experiment.eval_size) under `threats` (default: the `preset`'s
    budgets, else the run's dataset's, mnist or cifar10, with `overrides`); write union.json and
    union.md under `out` (default `<run_dir>/union`) and return what union.json holds. A row without a
    model is an error, or with `skip_missing` (a run still in progress) left out."""
    if images is not None and images < 1:
        raise ConfigError(f"images must be at least 1, got {images}")
    console = console or Console(stderr=True)
    run = Workspace.open(run_dir)
    config = run.config
    if threats is None:
        preset = preset or config.data.name
        if preset not in PRESETS:
            known = ", ".join(PRESETS)
            raise ConfigError(f"no union budgets for dataset {preset!r}: name a preset ({known})")
        threats = UnionThreats.preset(preset, **(overrides or {}))
    checkpoints = model_rows(config)
    unknown = [r for r in rows or () if r not in checkpoints]
    if unknown:
        raise ConfigError(f"unknown rows {unknown}: this run has {list(checkpoints)}")
    trained = {r for r, c in checkpoints.items() if run.has_model(c)}
    rows = rows or [r for r in checkpoints if r in trained]
    if not rows:
        raise ConfigError(f"{run_dir}: no trained model yet")
    missing = [r for r in rows if r not in trained]
    if missing and not skip_missing:
        raise ConfigError(f"rows {missing} have no model yet in {run_dir}/models (is the run finished?)")
    if missing:
        console.print(f"[yellow]skipped, no model yet: {', '.join(missing)}[/]")
        rows = [r for r in rows if r not in missing]
        if not rows:
            raise ConfigError(f"{run_dir}: none of the rows has a model yet")
    task = load_task(config.data)
    split = task.attack.head(images or config.experiment.eval_size or len(task.attack))
    target = resolve_device(device or config.run.device)
    results: dict[str, dict[str, float]] = {}
    n_attacks = stage_count(threats)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console,
    ) as progress:  # fmt: skip
        bar = progress.add_task("union attacks", total=len(rows) * n_attacks)
        for row in rows:
            model = build_model_for(
                config.model.target, task.shape, task.num_classes, **config.model.target_kwargs
            )
            run.load_model(checkpoints[row], model).to(target)
            progress.update(bar, description=f"union attacks: {row}")
            results[row] = union_errors(
                model, split.x, split.y, threats, on_result=lambda *_: progress.advance(bar)
            )
            console.print(f"{row}: union error {100 * results[row]['union']:.1f}% (n={len(split)})")
    payload = {"dataset": task.name, "images": len(split), "threats": threats.model_dump(), "rows": results}
    out = out or run.url("union")
    for name, data in (
        ("union.json", json.dumps(payload, indent=2, sort_keys=True).encode()),
        ("union.md", union_table(results, threats, len(split)).encode()),
    ):
        with storage.atomic_write(storage.join(out, name)) as handle:
            handle.write(data)
    return payload
