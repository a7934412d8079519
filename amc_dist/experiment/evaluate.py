"""The experiment's evaluation steps: score one model (white-box, or black-box through its P''),
store its numbers under `results/`, and assemble the paper's tables in the `report` step.

The full one-model report (squeezing with BPDA and the gradient-masking smell tests) runs for the
undefended model and AMC target-hardened; every other row gets clean and Table 1 errors, the worst case
of strong PGD, APGD-CE and APGD-DLR, and the smell tests where an adaptive attacker's P'' exists for it
(the black-box rows).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from amc_dist.attacks import build_attacks
from amc_dist.evaluation.clean import error_rate
from amc_dist.evaluation.report import evaluate_model, seeded, write_report
from amc_dist.evaluation.results import build_results
from amc_dist.evaluation.robustness import attack_errors
from amc_dist.evaluation.smell import SMELL_SIZE, smell_rows
from amc_dist.evaluation.squeezing import describe_squeezer, squeezed_errors, squeezer_for
from amc_dist.evaluation.worst_case import strong_event, worst_case_errors, worst_case_params
from amc_dist.events import event
from amc_dist.experiment.context import Context
from amc_dist.experiment.rows import blackbox_rows, model_rows

FULL_REPORT_ROWS = ("undefended", "amc_target")


def _reporter(ctx: Context, stage: str, setting: str, n: int):
    def on_result(attack: str, error: float) -> None:
        ctx.on_event(event("eval", stage, 0, setting=setting, attack=attack, error_rate=error, n=n))

    return on_result


def whitebox_step(ctx: Context, *, row: str, checkpoint: str, proxy: str | None = None) -> None:
    """Clean error (Table 2), white-box errors at Table 1 parameters (Table 3), under the strong PGD,
    and for the leave-one-out cascade its unseen attack with and without squeezing (Table 6).

    The gradient-masking smell tests run for the full-report rows (bare and, through BPDA, squeezed) and
    for every row with an adaptive attacker's P'' (`proxy`), which also crafts their transfer check."""
    c, stage = ctx.config, f"eval.{row}"
    model = ctx.target_model(checkpoint)
    source = None if proxy is None else ctx.proxy_model(proxy)
    split, test = ctx.evaluation_split, ctx.task.test
    if row in FULL_REPORT_ROWS:
        result = evaluate_model(
            model,
            split.x,
            split.y,
            c,
            proxy=source,
            blackbox=False,  # the row's black-box numbers are the blackbox step's
            on_event=ctx.on_event,
            name=row,
            test=(test.x, test.y),
            seed=c.seed,
            stage=stage,
        )
    else:
        with seeded(model, c.seed):
            result = _row_report(ctx, model, row, source)
    if row == "amc_loo":
        left_out = c.experiment.leave_out
        unseen = build_attacks({left_out: c.attacks.whitebox[left_out]})
        result["leave_one_out"] = squeezed_errors(model, split.x, split.y, unseen, c.squeeze, name=row)
    result.update(row=row, checkpoint=checkpoint, n=len(split))
    ctx.workspace.write_json(f"results/eval.{row}.json", result)


def _row_report(ctx: Context, model: nn.Module, row: str, source: nn.Module | None) -> dict[str, Any]:
    """A row without the full report: clean, Table 1, strong-PGD, APGD and worst-case errors, and the smell
    tests when the row has a P'' (`source`)."""
    c, stage = ctx.config, f"eval.{row}"
    split, test = ctx.evaluation_split, ctx.task.test
    report = _reporter(ctx, stage, "whitebox", len(split))
    clean = error_rate(model, test.x, test.y)
    ctx.on_event(event("eval", stage, 0, setting="clean", attack="none", error_rate=clean, n=len(test)))
    whitebox = attack_errors(model, split.x, split.y, build_attacks(c.attacks.whitebox), on_result=report)

    def strong(_row: str, attack: str, error: float) -> None:
        setting, name = strong_event(attack)
        ctx.on_event(event("eval", stage, 0, setting=setting, attack=name, error_rate=error, n=len(split)))

    worst = worst_case_errors(model, split.x, split.y, c.attacks, name=row, on_result=strong)
    result = {
        "name": row,
        "clean": clean,
        "whitebox": whitebox,
        "strong_pgd": {row: worst[row]["pgd_strong"]},
        "worst_case": worst,
    }
    if source is not None:
        m = min(SMELL_SIZE, len(split))

        def smelled(_row: str, check: str, error: float, passed: bool) -> None:
            ctx.on_event(
                event("eval", stage, 0, setting="smell", attack=check, error_rate=error, n=m, passed=passed)
            )

        result["smell_tests"] = smell_rows(
            model, split.x, split.y, pgd=c.attacks.strong_pgd, name=row, proxy=source, on_result=smelled
        )
    return result


def blackbox_step(ctx: Context, *, row: str, checkpoint: str, proxy: str) -> None:
    """Errors of the model on examples crafted on its adaptive attacker's P'' (Table 4)."""
    stage = f"blackbox.{row}"
    model = ctx.target_model(checkpoint)
    source, attacks = ctx.proxy_attacks(proxy)
    split = ctx.evaluation_split
    report = _reporter(ctx, stage, "blackbox", len(split))
    # A source of None: the attacks craft on the proxy's actor and ignore the model they are handed.
    source = model if source is None else source
    errors = attack_errors(model, split.x, split.y, attacks, source=source, on_result=report)
    ctx.workspace.write_json(
        f"results/blackbox.{row}.json", {"row": row, "n": len(split), "blackbox": errors}
    )


def collect_results(ctx: Context) -> dict[str, Any]:
    """`results.json` content from every evaluation step's stored numbers."""
    c = ctx.config
    evaluated = {row: ctx.workspace.read_json(f"results/eval.{row}.json") for row in model_rows(c)}
    blackbox = {
        row: ctx.workspace.read_json(f"results/blackbox.{row}.json")["blackbox"] for row in blackbox_rows(c)
    }
    clean = {row: r["clean"] for row, r in evaluated.items()}
    if c.experiment.baselines or "local_proxy" in c.experiment.variants:
        clean["proxy"] = error_rate(ctx.proxy_model("proxy.1"), ctx.task.test.x, ctx.task.test.y)
    strong_pgd: dict[str, float] = {}
    worst: dict[str, dict[str, float]] = {}
    smell: dict[str, Any] = {}
    for r in evaluated.values():
        strong_pgd.update(r["strong_pgd"])
        worst.update(r["worst_case"])
        smell.update(r.get("smell_tests", {}))
    leave_one_out = None
    if "amc_loo" in evaluated:
        left_out = c.experiment.leave_out
        leave_one_out = {"undefended": {left_out: evaluated["undefended"]["whitebox"][left_out]}}
        leave_one_out |= evaluated["amc_loo"]["leave_one_out"]
    return build_results(
        c.data.name,
        clean=clean,
        whitebox={row: r["whitebox"] for row, r in evaluated.items()},
        blackbox=blackbox,
        squeezing=evaluated.get("amc_target", {}).get("squeezing"),
        leave_one_out=leave_one_out,
        strong_pgd=strong_pgd,
        worst_case=worst,
        smell_tests=smell,
        meta={
            "train_images": len(ctx.task.train),
            "evaluation_images": len(ctx.evaluation_split),
            "test_images": len(ctx.task.test),
            "epochs": {"target": c.training.epochs, "per_stage": c.cascade.epochs_per_stage},
            "attacks": c.attacks.model_dump(mode="json"),
            "strong_pgd": c.attacks.strong_pgd.headline(),
            "worst_case": worst_case_params(c.attacks),
            "squeezer": describe_squeezer(squeezer_for(c.squeeze)),
            "attack_labels": "Table 1 attacks: the attacked model's own predictions; strong PGD, APGD: true "
            "labels",
        },
    )


def report_step(ctx: Context) -> None:
    write_report(collect_results(ctx), ctx.workspace.run_dir)
