"""The paper's whole experiment as a graph of steps: the undefended target, the attacker's proxies, the
baselines, the cascade variants and the evaluation (Tables 2-6). Each step reads and writes the workspace.

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

Union rows (`strategies.rows`): `union.<row>` (`union.<row>.k` per stage for amc_union), from M0, fresh
weights or an earlier union row; `union_eval.<row>` (the union evaluation alone) and `union_report`. With
`strategies.only` the graph holds M0 and the union rows alone.

Then `eval.<row>` (white-box), `p2.<row>` (an adaptive P'' fitted to that row's model through the
oracle) and `blackbox.<row>`, and `report`; a row's `eval` needs its `p2` where one exists, which crafts
the transfer check of the row's smell tests. AT baselines train as many epochs as the whole cascade
(`experiment.baseline_epochs` overrides), so they get the same adversarial training budget. The oracle's
query budget (`proxy.query_budget`) covers an attacker's whole campaign: P' and all its re-fits
(`proxy.*`) are campaign `proxy`; each `p2.<row>` is an attacker, and a campaign, of its own.
"""

from __future__ import annotations

import functools

from amc_dist.config import Config
from amc_dist.experiment.evaluate import blackbox_step, report_step, whitebox_step
from amc_dist.experiment.graph import Graph, Kind, Resources, Step
from amc_dist.experiment.rows import blackbox_rows, model_rows, union_rows
from amc_dist.experiment.steps import FitProxy, Training
from amc_dist.experiment.union_steps import UnionTraining, union_eval_step, union_report_step, union_threats
from amc_dist.training.cascade import Stage, cascade_stages

P1_CAMPAIGN = "proxy"  # the attacker campaign of P' and its re-fits


def resources_for(kind: Kind, config: Config) -> Resources:
    """What a step of `kind` asks of a cluster (`ray` section): trainings get the configured Train
    workers; everything else runs as one worker of the same size."""
    r = config.ray
    gpus = r.gpus_per_worker if r.use_gpu else 0.0
    workers = r.num_workers if kind == "train" else 1
    return Resources(cpus=r.cpus_per_worker, gpus=gpus, workers=workers)


def build_graph(config: Config) -> Graph:
    c, steps = config, []
    order, variants = c.cascade.order, c.experiment.variants
    epochs = c.cascade.epochs_per_stage
    baseline_epochs = c.experiment.baseline_epochs or epochs * len(order)
    p1_seed, p2_seed = c.seed + 101, c.seed + 202

    def add(name: str, run, needs, outputs, description: str, kind: Kind) -> None:
        steps.append(Step(name, run, tuple(needs), tuple(outputs), description, kind, resources_for(kind, c)))

    def fit_proxy(
        name: str, against: str, start: str | None, seed: int, campaign: str, description: str
    ) -> None:
        needs = [against] if start is None else [against, start]
        fit = FitProxy(name, against, start, seed, campaign)
        add(name, fit, needs, [f"models/{name}.pt"], description, "fit_proxy")

    def adversarial(name: str, start: str, stage: Stage, n_epochs: int, description: str, proxy=None) -> None:
        needs = [start] if proxy is None else [start, proxy]
        training = Training(name, stage, start, n_epochs, proxy)
        add(name, training, needs, [f"models/{name}.pt"], description, "train")

    def cascade(prefix: str, stages: list[Stage], describe: str, proxied: bool = False) -> None:
        previous = "target"
        for stage in stages:
            proxy = f"proxy.{stage.index}" if proxied else None
            if proxied and stage.index > 1:  # P' follows the cascade: re-fitted to the stage just trained
                fit_proxy(
                    proxy,
                    previous,
                    f"proxy.{stage.index - 1}",
                    p1_seed,
                    P1_CAMPAIGN,
                    f"P' re-fitted to {previous}",
                )
            name = f"{prefix}.{stage.index}"
            start = previous if c.cascade.parameter_transfer else "target"
            description = f"{describe} stage {stage.index}: {'+'.join(stage.attacks)}"
            adversarial(name, start, stage, epochs, description, proxy)
            previous = name

    add("target", Training("target"), [], ["models/target.pt"], "undefended target M0", "train")
    union = union_rows(c)
    if c.strategies.rows:
        union_threats(c)  # a bad union evaluation fails here, before any work
    for row in c.strategies.rows:
        start = {"scratch": None}.get(row.start, union.get(row.start, row.start))
        attacks = tuple(c.strategies.attacks_of(row))
        if row.strategy == "amc_union":
            cascade_config = c.cascade.model_copy(update={"order": list(attacks)})
            for stage in cascade_stages(cascade_config):
                name = f"union.{row.name}.{stage.index}"
                training = UnionTraining(name, row, stage.attacks, start, row.epochs, stage)
                description = f"union row {row.name} stage {stage.index}: {'+'.join(stage.attacks)}"
                add(name, training, [start] if start else [], [f"models/{name}.pt"], description, "train")
                start = name if c.cascade.parameter_transfer else start
        else:
            name = f"union.{row.name}"
            training = UnionTraining(name, row, attacks, start, row.epochs)
            description = f"union row {row.name}: {row.strategy} over {'+'.join(attacks)}"
            add(name, training, [start] if start else [], [f"models/{name}.pt"], description, "train")
        run = functools.partial(union_eval_step, row=row.name, checkpoint=union[row.name])
        add(f"union_eval.{row.name}", run, [union[row.name]], [f"results/union.{row.name}.json"],
            f"union evaluation of {row.name}", "evaluate")  # fmt: skip
    if c.strategies.rows:
        add("union_report", union_report_step, [f"union_eval.{r.name}" for r in c.strategies.rows],
            ["union/union.json", "union/union.md"], "the union table", "report")  # fmt: skip
    if c.strategies.only:
        return Graph(steps)
    if c.experiment.baselines or "local_proxy" in variants:
        fit_proxy("proxy.1", "target", None, p1_seed, P1_CAMPAIGN, "P' fitted to M0 through the oracle")
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

    rows, evaluations, proxied = model_rows(c), [], blackbox_rows(c)
    for row, checkpoint in rows.items():
        p2 = f"p2.{row}" if row in proxied else None  # P'' also crafts the smell tests' transfer check
        run = functools.partial(whitebox_step, row=row, checkpoint=checkpoint, proxy=p2)
        needs, outputs = [checkpoint] if p2 is None else [checkpoint, p2], [f"results/eval.{row}.json"]
        add(f"eval.{row}", run, needs, outputs, f"white-box evaluation of {row}", "evaluate")
        evaluations.append(f"eval.{row}")
    for row in blackbox_rows(c):
        checkpoint, p2 = rows[row], f"p2.{row}"
        fit_proxy(p2, checkpoint, None, p2_seed, p2, f"the adaptive attacker's P'' fitted to {row}")
        run = functools.partial(blackbox_step, row=row, checkpoint=checkpoint, proxy=p2)
        outputs = [f"results/blackbox.{row}.json"]
        add(f"blackbox.{row}", run, [checkpoint, p2], outputs, f"black-box evaluation of {row}", "evaluate")
        evaluations.append(f"blackbox.{row}")
    add("report", report_step, evaluations, ["results.json", "results.md"], "the tables", "report")
    return Graph(steps)
