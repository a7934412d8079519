"""The union rows' steps: train a row with its strategy (charged in cost units, its start's cost added),
stop it loudly when its training attack collapses, and score it with the union evaluation alone.

Each row's cost is `costs/<step>.json`: `train` (its attacks and training), `check` (the per-epoch
collapse check), `start` (what its starting model cost: M0's plain epochs, or the earlier row's total),
and `total`, their sum. M0 is charged one forward+backward per training image and epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from pydantic import ValidationError
from torch import nn

from amc_dist.attacks import Attack, attack_for, build_attacks
from amc_dist.attacks.apgd import APGDParams
from amc_dist.config import Config, ConfigError, UnionRow, describe_error
from amc_dist.evaluation.clean import error_rate
from amc_dist.evaluation.robustness import attack_errors
from amc_dist.evaluation.union import UNION, UnionThreats, union_errors, union_table
from amc_dist.events import event
from amc_dist.experiment.context import Context
from amc_dist.experiment.steps import adversarial_images
from amc_dist.training.cascade import Stage
from amc_dist.training.cost import CostMeter
from amc_dist.training.strategies import STRATEGIES
from amc_dist.training.trainer import EpochStore, Evaluator, fit, rank_and_world


class TrainingCollapsed(RuntimeError):
    """The training attack finds far fewer errors than a short APGD: its examples no longer teach."""


def threat_name(attack: Attack) -> str:
    """'linf', 'l2' or 'l1': the threat model of an attack's norm."""
    ord = getattr(attack.params, "ord", math.inf)
    return "linf" if math.isinf(ord) else f"l{ord:g}"


def collapse_check(ctx: Context, attacks: dict[str, Attack]) -> Evaluator:
    """After each epoch, on the first `check_images` validation images: the error under each training
    attack and under APGD-CE at its budget (`check_iter` iterations), per threat model and for their
    union (the TUI's live figures); raises TrainingCollapsed when a training attack's robust accuracy
    exceeds APGD's by more than `check_gap`."""
    s = ctx.config.strategies
    part = ctx.task.validation.head(s.check_images)
    apgd = {
        threat_name(a): attack_for(
            APGDParams(ord=a.params.ord, eps=a.params.eps, n_iter=s.check_iter, seed=ctx.config.seed)
        )
        for a in attacks.values()
    }
    by_threat = {threat_name(a): name for name, a in attacks.items()}

    def evaluate(model: nn.Module) -> list[dict]:
        n = len(part)
        records = [
            {"setting": "clean", "attack": "none", "error_rate": error_rate(model, part.x, part.y), "n": n}
        ]
        trained = attack_errors(model, part.x, part.y, attacks, labels="true")
        strong = attack_errors(model, part.x, part.y, apgd, labels="true")
        for threat, error in strong.items():
            records.append({"setting": "union", "attack": threat, "error_rate": error, "n": n})
        for threat, name in by_threat.items():
            records.append({"setting": "whitebox", "attack": name, "error_rate": trained[name], "n": n})
            if strong[threat] - trained[name] > s.check_gap:
                raise TrainingCollapsed(
                    f"{name}: {100 * (1 - trained[name]):.1f}% robust accuracy under the training attack but "
                    f"{100 * (1 - strong[threat]):.1f}% under APGD-CE ({s.check_iter} iterations) on {n} "
                    f"validation images: the training attack collapsed (gap above {s.check_gap:g})"
                )
        return records

    return evaluate


@dataclass(frozen=True)
class UnionTraining:
    """Train step `name` of union row `row`: its strategy over `attacks` (for amc_union, one cascade
    `stage`) for `epochs` from checkpoint `start` (None: fresh weights)."""

    name: str
    row: UnionRow
    attacks: tuple[str, ...]
    start: str | None
    epochs: int
    stage: Stage | None = None

    def strategy(self, ctx: Context):
        c, s = ctx.config, ctx.config.strategies
        built = build_attacks(c.attacks.whitebox, self.attacks)
        seed = c.seed + (self.stage.index if self.stage else 0)
        if self.stage is not None:
            return STRATEGIES["amc_union"](
                built,
                shares=self.stage.shares,
                lambdas=self.stage.lambdas,
                ramp_epochs=s.ramp_epochs,
                seed=seed,
            )
        return STRATEGIES[self.row.strategy](built, ramp_epochs=s.ramp_epochs, seed=seed)

    def fit(self, ctx: Context, store: EpochStore | None) -> nn.Module:
        c, s = ctx.config, ctx.config.strategies
        torch.manual_seed(c.seed)  # fresh weights (start 'scratch') repeat themselves
        model = ctx.target_model(self.start)
        alpha = s.alpha if self.row.alpha is None else self.row.alpha
        settings = c.training.model_copy(update={"alpha": alpha})
        meter = CostMeter()
        train = adversarial_images(ctx)
        with meter.counting(model):
            fit(
                model, train.x, train.y, settings, epochs=self.epochs,
                perturb=self.strategy(ctx), augment=ctx.augment(),
                evaluate=collapse_check(ctx, build_attacks(c.attacks.whitebox, self.attacks)),
                on_event=ctx.on_event, stage=self.name, seed=c.seed, store=store, meter=meter,
            )  # fmt: skip
        rank, world = rank_and_world()
        if rank == 0:  # every rank did the same work on its shard
            units = {k: v * (world if k == "train" else 1) for k, v in meter.units.items()}
            start = start_cost(ctx, self.start)
            cost = {"train": units.get("train", 0.0), "check": units.get("check", 0.0), "start": start}
            ctx.workspace.write_json(f"costs/{self.name}.json", cost | {"total": sum(cost.values())})
        return model

    def finish(self, ctx: Context, model: nn.Module) -> None:
        test = ctx.task.test
        ctx.workspace.save_model(self.name, model, test_error=error_rate(model, test.x, test.y))

    def __call__(self, ctx: Context) -> None:
        self.finish(ctx, self.fit(ctx, ctx.workspace.epoch_store(self.name)))


def start_cost(ctx: Context, start: str | None) -> float:
    """What the starting checkpoint cost: none from scratch, M0's plain epochs, a row's stored total."""
    if start is None:
        return 0.0
    if start == "target":
        return float(ctx.config.training.epochs * len(ctx.task.train))
    return float(ctx.workspace.read_json(f"costs/{start}.json")["total"])


def union_threats(config: Config) -> UnionThreats:
    """The configured union evaluation (`preset: cifar10` names the budgets, other keys override), or
    ConfigError naming the bad `strategies.threats` key."""
    given = dict(config.strategies.threats)
    preset = given.pop("preset", "mnist")
    try:
        return UnionThreats.preset(preset, **given)
    except ValidationError as exc:
        raise ConfigError(describe_error(exc, "strategies.threats")) from None
    except ValueError as exc:
        raise ConfigError(f"strategies.threats.preset: {exc}") from None


def union_eval_step(ctx: Context, *, row: str, checkpoint: str) -> None:
    """The union evaluation alone (no proxies, no black-box steps) on the first `eval_images` images of the
    test split, stored with the row's cost as `results/union.<row>.json`."""
    s, stage = ctx.config.strategies, f"union_eval.{row}"
    model = ctx.target_model(checkpoint)
    split = ctx.task.test.head(s.eval_images)
    threats = union_threats(ctx.config)

    def on_result(attack: str, error: float) -> None:
        ctx.on_event(event("eval", stage, 0, setting="union", attack=attack, error_rate=error, n=len(split)))

    errors = union_errors(model, split.x, split.y, threats, on_result=on_result)
    for name in ("clean", "linf", "l2", "l1", UNION):
        if name in errors:
            setting = "clean" if name == "clean" else "union"
            attack = "none" if name == "clean" else name
            ctx.on_event(event("eval", stage, 0, setting=setting, attack=attack, error_rate=errors[name],
                               n=len(split)))  # fmt: skip
    cost = ctx.workspace.read_json(f"costs/{checkpoint}.json")
    ctx.workspace.write_json(
        f"results/union.{row}.json",
        {"row": row, "checkpoint": checkpoint, "n": len(split), "errors": errors, "cost": cost},
    )


def union_report_step(ctx: Context) -> None:
    """`union/union.json` and `union/union.md`: every union row's errors beside MSD's, and its cost."""
    c = ctx.config
    rows = {row.name: ctx.workspace.read_json(f"results/union.{row.name}.json") for row in c.strategies.rows}
    threats = union_threats(c)
    images = min((r["n"] for r in rows.values()), default=0)
    lines = [
        union_table({name: r["errors"] for name, r in rows.items()}, threats, images),
        "Cost in units of one forward+backward pass of one image (a forward alone 0.3), counted as each row "
        "ran: its training attacks and training, its per-epoch collapse check, its starting model's cost.",
        "",
        "| model | strategy | train | check | start | total |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in c.strategies.rows:
        cost = rows[row.name]["cost"]
        cells = [f"{cost[k]:.3g}" for k in ("train", "check", "start", "total")]
        lines.append(f"| {row.name} | {row.strategy} | {' | '.join(cells)} |")
    ctx.workspace.write_bytes("union/union.md", ("\n".join(lines) + "\n").encode())
    ctx.workspace.write_json(
        "union/union.json",
        {"dataset": c.data.name, "images": images, "threats": threats.model_dump(), "rows": rows},
    )
