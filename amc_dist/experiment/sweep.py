"""A hyperparameter sweep over a base experiment: what a sweep file may search (alpha, the lambdas on the
simplex, attack parameters), validated before any work, and one trial: a target-hardened cascade trained
stage by stage from the sweep's shared undefended model M0, scored after each stage on the VALIDATION
split only (clean error and the error under each of the cascade's attacks; never the attack or test
split, which the reported results use). Ray Tune drives trials (`distributed/tuning.py`); nothing here
imports Ray."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from amc_dist import storage
from amc_dist.attacks import build_attacks
from amc_dist.config import (
    Config,
    ConfigError,
    Strict,
    apply_overrides,
    describe_error,
    read_yaml,
    validate_config,
)
from amc_dist.evaluation.clean import error_rate
from amc_dist.evaluation.robustness import attack_errors
from amc_dist.events import EventSink
from amc_dist.experiment.context import Context
from amc_dist.experiment.steps import Training
from amc_dist.experiment.workspace import Workspace
from amc_dist.training.cascade import cascade_stages

# What a trial may change: none of it changes M0, which every trial shares.
SEARCHABLE = ("training.alpha", "cascade.", "attacks.")


class Distribution(Strict):
    """Exactly one of: uniform [low, high], loguniform [low, high] (low > 0), a choice among values."""

    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    choice: list[Any] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> Distribution:
        given = [k for k in ("uniform", "loguniform", "choice") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of uniform, loguniform, choice (got {given or 'none'})")
        bounds = self.uniform or self.loguniform
        if bounds is not None and not bounds[0] < bounds[1]:
            raise ValueError(f"the lower bound must be below the upper, got {list(bounds)}")
        if self.loguniform is not None and self.loguniform[0] <= 0:
            raise ValueError("loguniform bounds must be positive")
        return self

    def example(self) -> Any:
        """A value inside the distribution (to check that the key accepts it)."""
        if self.choice is not None:
            return self.choice[0]
        low, high = self.uniform or self.loguniform
        return (low + high) / 2 if self.uniform else math.sqrt(low * high)


class Scheduler(Strict):
    """ASHA: stops trials whose objective after a stage is in the worse part of their peers'."""

    grace_period: int = Field(1, ge=1, description="stages every trial runs before it may be stopped")
    reduction_factor: float = Field(2.0, gt=1, description="keep 1/reduction_factor at each rung")


class SweepConfig(Strict):
    base: str = Field(description="the experiment YAML searched over, relative to the sweep file")
    set: list[str] = Field(default_factory=list, description="key=value overrides of the base")
    search: dict[str, Distribution | Literal["simplex"]] = Field(
        description="dotted config key -> distribution; 'cascade.lambdas': simplex (one weight per attack)"
    )
    objective: Literal["mean", "worst"] = Field(
        "mean", description="minimised: mean or worst-case validation error over the cascade's attacks"
    )
    num_samples: int = Field(8, ge=1, description="trials")
    max_concurrent_trials: int | None = Field(None, ge=1, description="None: as the cluster's CPUs allow")
    scheduler: Scheduler = Field(default_factory=Scheduler)
    name: str = Field("sweep", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    storage: str | None = Field(None, description="where sweeps live; default <base run.output>/sweeps")

    @model_validator(mode="after")
    def _search_not_empty(self) -> SweepConfig:
        if not self.search:
            raise ValueError("search is empty: name at least one key to search")
        for key, space in self.search.items():
            if not key.startswith(SEARCHABLE):
                raise ValueError(
                    f"{key}: only training.alpha, cascade.* and attacks.* may be searched (every trial "
                    "shares one undefended model M0, which other keys would change)"
                )
            if (space == "simplex") != (key == "cascade.lambdas"):
                raise ValueError(f"{key}: 'simplex' is the search space of cascade.lambdas, and only its")
        return self


class Sweep:
    """A validated sweep file: its settings and its base experiment config (as raw YAML data)."""

    def __init__(self, settings: SweepConfig, base_raw: dict[str, Any], source: str) -> None:
        self.settings, self.base_raw, self.source = settings, base_raw, source
        self.base = self.trial_config({})

    def order(self) -> list[str]:
        return self.base.cascade.order

    def trial_config(self, values: dict[str, Any]) -> Config:
        """The base config with a trial's sampled values (raises ConfigError naming the key)."""
        overrides = [*self.settings.set, *(f"{k}={json.dumps(v)}" for k, v in values.items())]
        return validate_config(apply_overrides(copy.deepcopy(self.base_raw), overrides), self.source)

    def best_config_yaml(self, values: dict[str, Any]) -> str:
        """A ready-to-run experiment YAML: the base with the best trial's values."""
        overrides = [*self.settings.set, *(f"{k}={json.dumps(v)}" for k, v in values.items())]
        raw = apply_overrides(copy.deepcopy(self.base_raw), overrides)
        validate_config(raw, self.source)
        header = f"# The best trial of sweep {self.settings.name!r} ({self.source}): {json.dumps(values)}\n"
        return header + yaml.safe_dump(raw, sort_keys=False)


def load_sweep(path: str | Path, overrides: list[str] | None = None) -> Sweep:
    """Read and validate a sweep file and its base; every searched key is checked by building a config
    with a value from its distribution. Raises ConfigError naming the file and key."""
    path = Path(path)
    raw = read_yaml(path, "sweep file")
    if overrides:
        raw = apply_overrides(raw if isinstance(raw, dict) else {}, overrides)
    try:
        settings = SweepConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_error(exc, str(path))) from None
    base_path = (path.parent / settings.base).resolve()
    base_raw = read_yaml(base_path, f"the base of {path}")
    sweep = Sweep(settings, base_raw, f"{base_path} (base of {path})")
    for key, space in settings.search.items():
        order = sweep.order()
        example = [1 / len(order)] * len(order) if space == "simplex" else space.example()
        try:
            sweep.trial_config({key: example})
        except ConfigError as exc:
            raise ConfigError(f"{path}: search.{key}: {exc}") from None
    return sweep


def validation_scores(ctx: Context, model, attacks: list[str]) -> dict[str, float]:
    """Clean and per-attack error on the validation split, with the mean and worst over the attacks."""
    part = ctx.task.validation.head(ctx.config.training.eval_size)
    built = build_attacks(ctx.config.attacks.whitebox, attacks)
    errors = attack_errors(model, part.x, part.y, built)
    scores = {f"error_{name}": value for name, value in errors.items()}
    scores |= {"mean_error": sum(errors.values()) / len(errors), "worst_error": max(errors.values())}
    return scores | {"clean_error": error_rate(model, part.x, part.y)}


def run_trial(
    config: Config,
    run_dir: str,
    target_url: str,
    *,
    on_event: EventSink,
    report: Callable[[int, dict[str, float]], None],
    first_stage: int = 1,
) -> None:
    """Train the cascade's stages from M0 (`target_url`, copied in) and `report(stage, scores)` after
    each stage from `first_stage` on; stages stored by an earlier attempt are not trained again."""
    workspace = Workspace(run_dir, config)
    workspace.write_config()
    if not workspace.is_done("target"):
        with storage.atomic_write(workspace.url("models", "target.pt")) as handle:
            handle.write(storage.read_bytes(target_url))
        workspace.mark_done("target", ("models/target.pt",))
    ctx = Context(workspace, on_event)
    previous = "target"
    for stage in cascade_stages(config.cascade):
        name = f"amc_target.{stage.index}"
        if not workspace.is_done(name):
            Training(name, stage, previous, config.cascade.epochs_per_stage)(ctx)
            workspace.mark_done(name, (f"models/{name}.pt",))
        if stage.index >= first_stage:
            report(stage.index, validation_scores(ctx, ctx.target_model(name), config.cascade.order))
        previous = name
