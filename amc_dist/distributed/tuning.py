"""A sweep on Ray Tune: each trial a target-hardened cascade from the shared M0, reporting its validation
scores after every stage (ASHA stops the bad ones after a stage), with its stage as a Tune checkpoint so
an interrupted sweep resumes (`Tuner.restore`) where each trial stood. Trials report to the metrics hub
like runs (`<sweep>.<trial>`), so the monitor shows them."""

from __future__ import annotations

import json
import math
import os
import tempfile
from typing import Any

from ray import tune
from ray.tune.schedulers import ASHAScheduler

from amc_dist import storage
from amc_dist.distributed.hub import HubSink, hub
from amc_dist.events import Reporter
from amc_dist.experiment.plan import build_graph
from amc_dist.experiment.runner import run_started, selected_steps
from amc_dist.experiment.sweep import Sweep, run_trial

STAGE_FILE = "stage.json"


def param_space(sweep: Sweep) -> dict[str, Any]:
    """Tune's search space for the sweep file's `search` section. The simplex is sampled as one uniform
    per weight (`key[i]`), which `normalised` turns into Dirichlet(1) weights: plain distributions keep
    the searcher's state checkpointable, so a restored sweep still starts the trials it had not begun."""
    space: dict[str, Any] = {}
    for key, dist in sweep.settings.search.items():
        if dist == "simplex":
            space |= {f"{key}[{i}]": tune.uniform(0.0, 1.0) for i in range(len(sweep.order()))}
        elif dist.uniform is not None:
            space[key] = tune.uniform(*dist.uniform)
        elif dist.loguniform is not None:
            space[key] = tune.loguniform(*dist.loguniform)
        else:
            space[key] = tune.choice(dist.choice)
    return space


def normalised(values: dict[str, Any]) -> dict[str, Any]:
    """A trial's config values: uniforms u_i of a simplex key become weights -log(u_i) / sum (Dirichlet(1)
    exactly, as normalised exponentials)."""
    out: dict[str, Any] = {}
    simplex: dict[str, list[tuple[int, float]]] = {}
    for key, value in values.items():
        if key.endswith("]") and "[" in key:
            name, index = key[:-1].split("[")
            simplex.setdefault(name, []).append((int(index), -math.log(max(float(value), 1e-300))))
        else:
            out[key] = value
    for name, parts in simplex.items():
        weights = [w for _, w in sorted(parts)]
        out[name] = [w / sum(weights) for w in weights]
    return out


def make_trainable(sweep: Sweep, sweep_dir: str, target_url: str, hub_index: str):
    name = sweep.settings.name

    def trainable(values: dict[str, Any]) -> None:
        values = normalised(values)
        config = sweep.trial_config(values)
        trial = tune.get_context().get_trial_id()
        run_id, run_dir = f"{name}.{trial}", storage.join(sweep_dir, "trials", trial)
        storage.configure(config.run.s3_endpoint)
        sink = HubSink(hub(hub_index), run_id, run_dir)
        reporter = Reporter(run_id, [sink])
        graph = build_graph(config)
        names = selected_steps(graph, [f"amc_target.{len(config.cascade.order)}"])
        started = run_started(config, graph, names, 1, "tune")
        reporter({**started, "sweep": name, "trial": trial, "values": values})
        checkpoint = tune.get_checkpoint()
        first = 1
        if checkpoint is not None:
            with checkpoint.as_directory() as directory, open(os.path.join(directory, STAGE_FILE)) as handle:
                first = json.load(handle)["stage"] + 1

        def report(stage: int, scores: dict[str, float]) -> None:
            sink.flush()
            objective = scores[f"{sweep.settings.objective}_error"]
            with tempfile.TemporaryDirectory() as directory:
                with open(os.path.join(directory, STAGE_FILE), "w") as handle:
                    json.dump({"stage": stage}, handle)
                metrics = {"stage": stage, "objective": objective, **scores}
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

        try:
            run_trial(config, run_dir, target_url, on_event=reporter, report=report, first_stage=first)
        finally:
            sink.close()

    return trainable


def tuner(sweep: Sweep, sweep_dir: str, target_url: str, hub_index: str, *, resume: bool) -> tune.Tuner:
    """A new Tuner for the sweep, or the interrupted one restored (its unfinished and errored trials)."""
    trainable = tune.with_resources(
        make_trainable(sweep, sweep_dir, target_url, hub_index), {"cpu": sweep.base.ray.cpus_per_worker}
    )
    fs, path = storage.pyarrow_filesystem(storage.join(sweep_dir, "tune"))
    experiment = f"{path.rstrip('/')}/{sweep.settings.name}"
    if resume:
        if not tune.Tuner.can_restore(experiment, storage_filesystem=fs):
            raise FileNotFoundError(f"no sweep to resume at {experiment}")
        return tune.Tuner.restore(experiment, trainable, resume_errored=True, storage_filesystem=fs)
    settings = sweep.settings
    scheduler = ASHAScheduler(
        time_attr="stage",
        max_t=len(sweep.order()),
        grace_period=settings.scheduler.grace_period,
        reduction_factor=settings.scheduler.reduction_factor,
    )
    return tune.Tuner(
        trainable,
        param_space=param_space(sweep),
        tune_config=tune.TuneConfig(
            metric="objective",
            mode="min",
            scheduler=scheduler,
            num_samples=settings.num_samples,
            max_concurrent_trials=settings.max_concurrent_trials,
        ),
        run_config=tune.RunConfig(name=settings.name, storage_path=path, storage_filesystem=fs),
    )
