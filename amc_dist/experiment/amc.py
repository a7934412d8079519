"""The paper's whole experiment as steps: the undefended target, the attacker's proxies, the baselines,
the cascade variants and the evaluation (Tables 2-6), each step reading and writing the workspace.

Models and the steps that make them (checkpoints are `models/<step>.pt`):

| table row | step(s) |
|---|---|
| undefended (M0) | `target` |
| single-attack AT, per attack | `at.<attack>` (from M0, white-box) |
| proxy-based AT, per attack | `at_proxy.<attack>` (from M0, crafted on P' fitted to M0) |
| AMC, target-hardened | `amc_target.1` ... `amc_target.E` |
| AMC, local proxy | `proxy.k` (P' re-fitted to stage k-1 via the oracle), `amc_proxy.k` |
| AMC without parameter transfer | `amc_no_transfer` (stage E's mixture, from M0) |
| AMC leaving one attack out | `amc_loo.1` ... |

Then `eval.<row>` (white-box), `p2.<row>` (an adaptive P'' fitted to that row's model through the
oracle) and `blackbox.<row>`, and `report`. AT baselines train as many epochs as the whole cascade
(`experiment.baseline_epochs` overrides), so they get the same adversarial training budget.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn

from amc_dist.attacks import build_attacks
from amc_dist.blackbox.oracle import ModelOracle
from amc_dist.blackbox.proxy import agreement, train_proxy
from amc_dist.config import Config
from amc_dist.data import load_proxy_dataset
from amc_dist.data.augment import augmentation_for
from amc_dist.evaluation.clean import error_rate
from amc_dist.events import EventSink, event
from amc_dist.experiment.graph import Graph, Step
from amc_dist.experiment.workspace import Workspace
from amc_dist.models import build_model_for
from amc_dist.task import Split, Task, load_task
from amc_dist.tensors import resolve_device
from amc_dist.training.cascade import Stage, cascade_stages, train_stage
from amc_dist.training.target import clean_validation, train_target


@dataclass
class Context:
    """What a step works with: the workspace, the config, the task data and the event sink."""

    workspace: Workspace
    on_event: EventSink

    @property
    def config(self) -> Config:
        return self.workspace.config

    @functools.cached_property
    def task(self) -> Task:
        return load_task(self.config.data)

    @functools.cached_property
    def proxy_images(self) -> torch.Tensor:
        data = load_proxy_dataset(self.config.data.name, self.config.data.root, self.config.proxy.n_samples)
        return torch.from_numpy(data.x)

    @property
    def device(self) -> torch.device:
        return resolve_device(self.config.run.device)

    @property
    def evaluation_split(self) -> Split:
        size = self.config.experiment.eval_size
        return self.task.attack if size is None else self.task.attack.head(size)

    def target_model(self, name: str | None = None) -> nn.Module:
        """The target architecture, with the weights of checkpoint `name` if given."""
        c = self.config
        model = build_model_for(
            c.model.target, self.task.shape, self.task.num_classes, **c.model.target_kwargs
        )
        return self._load(model, name)

    def proxy_model(self, name: str | None = None, seed: int = 0) -> nn.Module:
        c = self.config
        torch.manual_seed(seed)
        model = build_model_for(c.model.proxy, self.task.shape, self.task.num_classes, **c.model.proxy_kwargs)
        return self._load(model, name)

    def _load(self, model: nn.Module, name: str | None) -> nn.Module:
        model = model.to(self.device)
        return model if name is None else self.workspace.load_model(name, model)

    def augment(self):
        return augmentation_for(self.task.name) if self.config.data.augment else None


# ---- training steps ----------------------------------------------------------------------------


def step_target(ctx: Context) -> None:
    model, test_error = train_target(ctx.config, ctx.task, ctx.on_event)
    ctx.workspace.save_model("target", model, test_error=test_error)


def _stage_evaluator(ctx: Context, attacks: tuple[str, ...]):
    """Per-attack white-box validation error after each epoch (the TUI's live figures)."""
    part = ctx.task.validation.head(ctx.config.training.eval_size)
    built = build_attacks(ctx.config.attacks.whitebox, attacks)
    clean = clean_validation(ctx.task, ctx.config.training.eval_size)

    def evaluate(model: nn.Module) -> list[dict]:
        from amc_dist.evaluation.robustness import attack_errors

        records = clean(model)
        for name, error in attack_errors(model, part.x, part.y, built).items():
            records.append({"setting": "whitebox", "attack": name, "error_rate": error, "n": len(part)})
        return records

    return evaluate


def _adversarial_step(
    ctx: Context, name: str, start: str, stage: Stage, epochs: int, *, proxy: str | None = None
) -> None:
    """Train one adversarial model from checkpoint `start`; crafted on checkpoint `proxy` if given."""
    c = ctx.config
    source = ctx.proxy_model(proxy) if proxy else None
    model = train_stage(
        ctx.target_model(start),
        stage,
        ctx.task.train.x,
        ctx.task.train.y,
        c.training,
        epochs,
        c.attacks.blackbox if proxy else c.attacks.whitebox,
        source=source,
        augment=ctx.augment(),
        evaluate=_stage_evaluator(ctx, stage.attacks),
        on_event=ctx.on_event,
        name=name,
        seed=c.seed + stage.index,
        store=ctx.workspace.epoch_store(name),
    )
    ctx.workspace.save_model(name, model, test_error=error_rate(model, ctx.task.test.x, ctx.task.test.y))


def _fit_proxy(ctx: Context, name: str, against: str, start: str | None, seed: int) -> None:
    """Fit a proxy to checkpoint `against` through the oracle only, from checkpoint `start` or scratch."""
    c = ctx.config
    oracle = ModelOracle(ctx.target_model(against), c.proxy.label_noise, c.proxy.query_budget)
    proxy = train_proxy(
        oracle,
        ctx.proxy_model(start, seed=seed),
        ctx.proxy_images,
        c.proxy.interface,
        c.proxy.training,
        on_event=ctx.on_event,
        stage=name,
        seed=seed,
    )
    fidelity = agreement(proxy, oracle, ctx.task.test.x)
    ctx.on_event(
        event(
            "eval",
            name,
            0,
            setting="proxy",
            attack="agreement",
            error_rate=1 - fidelity,
            n=len(ctx.task.test),
            queries=oracle.queries,
        )
    )
    ctx.workspace.save_model(name, proxy, agreement=fidelity, queries=oracle.queries)


# ---- the graph ---------------------------------------------------------------------------------


def model_rows(config: Config) -> dict[str, str]:
    """Table row -> the checkpoint holding that model."""
    order, variants = config.cascade.order, config.experiment.variants
    rows = {"undefended": "target"}
    if config.experiment.baselines:
        rows |= {f"at_{a}": f"at.{a}" for a in order} | {f"at_proxy_{a}": f"at_proxy.{a}" for a in order}
    if "target_hardened" in variants:
        rows["amc_target"] = f"amc_target.{len(order)}"
    if "local_proxy" in variants:
        rows["amc_proxy"] = f"amc_proxy.{len(order)}"
    if "no_transfer" in variants:
        rows["amc_no_transfer"] = "amc_no_transfer"
    if "leave_one_out" in variants:
        rows["amc_loo"] = f"amc_loo.{len(order) - 1}"
    return rows


def blackbox_rows(config: Config) -> list[str]:
    """Rows evaluated against the adaptive black-box attacker (Table 4)."""
    rows = model_rows(config)
    return [r for r in rows if r == "undefended" or r.startswith("at_proxy_") or r == "amc_proxy"]


def build_graph(config: Config) -> Graph:
    from amc_dist.experiment.evaluate import blackbox_step, report_step, whitebox_step

    c, steps = config, []
    order, variants = c.cascade.order, c.experiment.variants
    epochs = c.cascade.epochs_per_stage
    baseline_epochs = c.experiment.baseline_epochs or epochs * len(order)
    p1_seed, p2_seed = c.seed + 101, c.seed + 202

    def train(step: str, needs: list[str], description: str, run, **arguments) -> None:
        """A step that trains checkpoint `step` by calling `run(ctx, **arguments)`."""
        steps.append(
            Step(step, functools.partial(run, **arguments), tuple(needs), (f"models/{step}.pt",), description)
        )

    def adversarial(name: str, start: str, stage: Stage, n_epochs: int, description: str, proxy=None) -> None:
        needs = [start] if proxy is None else [start, proxy]
        train(
            name,
            needs,
            description,
            _adversarial_step,
            name=name,
            start=start,
            stage=stage,
            epochs=n_epochs,
            proxy=proxy,
        )

    def cascade(prefix: str, stages: list[Stage], describe: str, proxied: bool = False) -> None:
        previous = "target"
        for stage in stages:
            proxy = f"proxy.{stage.index}" if proxied else None
            if proxied and stage.index > 1:  # P' follows the cascade: re-fitted to the stage just trained
                train(
                    proxy,
                    [previous, f"proxy.{stage.index - 1}"],
                    f"P' re-fitted to {previous}",
                    _fit_proxy,
                    name=proxy,
                    against=previous,
                    start=f"proxy.{stage.index - 1}",
                    seed=p1_seed,
                )
            name = f"{prefix}.{stage.index}"
            start = previous if c.cascade.parameter_transfer else "target"
            adversarial(
                name,
                start,
                stage,
                epochs,
                f"{describe} stage {stage.index}: {'+'.join(stage.attacks)}",
                proxy,
            )
            previous = name

    steps.append(Step("target", step_target, (), ("models/target.pt",), "undefended target M0"))
    if c.experiment.baselines or "local_proxy" in variants:
        train(
            "proxy.1",
            ["target"],
            "P' fitted to M0 through the oracle",
            _fit_proxy,
            name="proxy.1",
            against="target",
            start=None,
            seed=p1_seed,
        )
    stages = cascade_stages(c.cascade)
    if c.experiment.baselines:
        for a in order:
            single = Stage(1, (a,), (1.0,), None)
            adversarial(f"at.{a}", "target", single, baseline_epochs, f"adversarial training with {a}")
            adversarial(
                f"at_proxy.{a}", "target", single, baseline_epochs, f"proxy-based AT with {a}", "proxy.1"
            )
    if "target_hardened" in variants:
        cascade("amc_target", stages, "AMC target-hardened")
    if "local_proxy" in variants:
        cascade("amc_proxy", stages, "AMC local proxy", proxied=True)
    if "no_transfer" in variants:
        adversarial("amc_no_transfer", "target", stages[-1], epochs, "AMC's last stage from M0 (no transfer)")
    if "leave_one_out" in variants:
        kept = [a for a in order if a != c.experiment.leave_out]
        loo = cascade_stages(c.cascade.model_copy(update={"order": kept, "lambdas": "mixture"}))
        cascade("amc_loo", loo, f"AMC without {c.experiment.leave_out}")

    rows, evaluations = model_rows(c), []
    for row, checkpoint in rows.items():
        steps.append(
            Step(
                f"eval.{row}",
                functools.partial(whitebox_step, row=row, checkpoint=checkpoint),
                (checkpoint,),
                (f"results/eval.{row}.json",),
                f"white-box evaluation of {row}",
            )
        )
        evaluations.append(f"eval.{row}")
    for row in blackbox_rows(c):
        checkpoint, p2 = rows[row], f"p2.{row}"
        train(
            p2,
            [checkpoint],
            f"the adaptive attacker's P'' fitted to {row}",
            _fit_proxy,
            name=p2,
            against=checkpoint,
            start=None,
            seed=p2_seed,
        )
        steps.append(
            Step(
                f"blackbox.{row}",
                functools.partial(blackbox_step, row=row, checkpoint=checkpoint, proxy=p2),
                (checkpoint, p2),
                (f"results/blackbox.{row}.json",),
                f"black-box evaluation of {row}",
            )
        )
        evaluations.append(f"blackbox.{row}")
    steps.append(
        Step("report", report_step, tuple(evaluations), ("results.json", "results.md"), "the tables")
    )
    return Graph(steps)
