"""The bodies of the experiment's model-making steps: training a model and fitting a proxy.

A training step has two parts, so that exactly one process writes each artifact: `fit` runs on every
worker (one process in `amc run`, each rank of a Ray Train run) and returns the trained model; `finish`
runs once, where the step is driven, and stores the checkpoint with its held-out test error.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from amc_dist.attacks import build_attacks
from amc_dist.blackbox.proxy import agreement, train_proxy
from amc_dist.evaluation.clean import error_rate
from amc_dist.evaluation.robustness import attack_errors
from amc_dist.events import metric
from amc_dist.experiment.context import Context
from amc_dist.task import Split, Task
from amc_dist.training.cascade import Stage, train_stage
from amc_dist.training.target import train_target
from amc_dist.training.trainer import EpochStore, Evaluator


def clean_validation(task: Task, size: int) -> Evaluator:
    """An evaluator scoring clean error on the first `size` validation images after each epoch."""
    part = task.validation.head(size)

    def evaluate(model: nn.Module) -> list[dict]:
        error = error_rate(model, part.x, part.y)
        return [{"setting": "clean", "attack": "none", "error_rate": error, "n": len(part)}]

    return evaluate


def stage_evaluator(ctx: Context, attacks: tuple[str, ...]) -> Evaluator:
    """Clean and per-attack white-box validation error after each epoch (the TUI's live figures)."""
    part = ctx.task.validation.head(ctx.config.training.eval_size)
    built = build_attacks(ctx.config.attacks.whitebox, attacks)
    clean = clean_validation(ctx.task, ctx.config.training.eval_size)

    def evaluate(model: nn.Module) -> list[dict]:
        records = clean(model)
        for name, error in attack_errors(model, part.x, part.y, built).items():
            records.append({"setting": "whitebox", "attack": name, "error_rate": error, "n": len(part)})
        return records

    return evaluate


def adversarial_images(ctx: Context) -> Split:
    """The training images of an adversarial training: the first `experiment.adversarial_subset` of
    M0's (all of them when unset)."""
    subset = ctx.config.experiment.adversarial_subset
    return ctx.task.train if subset is None else ctx.task.train.head(subset)


@dataclass(frozen=True)
class Training:
    """Train checkpoint `name`: M0 from scratch (`stage` None), or one adversarial stage from checkpoint
    `start`, its examples crafted on the model itself or, with `proxy`, on that proxy checkpoint."""

    name: str
    stage: Stage | None = None
    start: str | None = None
    epochs: int | None = None
    proxy: str | None = None

    def fit(self, ctx: Context, store: EpochStore | None) -> nn.Module:
        c = ctx.config
        if self.stage is None:
            evaluate = clean_validation(ctx.task, c.training.eval_size)
            return train_target(c, ctx.task, ctx.on_event, evaluate=evaluate, store=store, device=ctx.device)
        train = adversarial_images(ctx)
        return train_stage(
            ctx.target_model(self.start),
            self.stage,
            train.x,
            train.y,
            c.training,
            self.epochs,
            c.attacks.blackbox if self.proxy else c.attacks.whitebox,
            source=ctx.proxy_model(self.proxy) if self.proxy else None,
            augment=ctx.augment(),
            evaluate=stage_evaluator(ctx, self.stage.attacks),
            on_event=ctx.on_event,
            name=self.name,
            seed=c.seed + self.stage.index,
            store=store,
        )

    def finish(self, ctx: Context, model: nn.Module) -> None:
        test = ctx.task.test
        ctx.workspace.save_model(self.name, model, test_error=error_rate(model, test.x, test.y))

    def __call__(self, ctx: Context) -> None:
        self.finish(ctx, self.fit(ctx, ctx.workspace.epoch_store(self.name)))


@dataclass(frozen=True)
class FitProxy:
    """Fit proxy checkpoint `name` to checkpoint `against` through the oracle only, from proxy checkpoint
    `start` (a re-fit) or from scratch, every query charged to attacker campaign `campaign` (P' and its
    re-fits are one campaign; each P'' is its own); then the defender measures its agreement.

    Two parts, as a training step has: `fit` is the attacker's (it sees the oracle, never the target's
    weights) and stores the proxy; `finish` is the defender's, scoring the proxy against the model it
    owns on its test split, which asks no oracle and spends none of the attacker's budget."""

    name: str
    against: str
    start: str | None
    seed: int
    campaign: str

    def fit(self, ctx: Context) -> nn.Module:
        c = ctx.config
        oracle = ctx.oracle(self.against, self.campaign)
        start = ctx.fresh_proxy(self.seed) if self.start is None else ctx.proxy_model(self.start)
        proxy = train_proxy(
            oracle,
            start,
            ctx.proxy_images,
            c.proxy.interface,
            c.proxy.training,
            on_event=ctx.on_event,
            stage=self.name,
            seed=self.seed,
        )
        ctx.workspace.save_model(self.name, proxy, campaign=self.campaign, campaign_queries=oracle.queries())
        return proxy

    def finish(self, ctx: Context, proxy: nn.Module) -> None:
        test = ctx.task.test
        fidelity = agreement(proxy, ctx.target_model(self.against), test.x)
        ctx.on_event(metric(self.name, "proxy", "agreement", fidelity, len(test), campaign=self.campaign))

    def __call__(self, ctx: Context) -> None:
        self.finish(ctx, self.fit(ctx))
