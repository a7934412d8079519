"""The experiment's evaluation steps: score one model (white-box, or black-box through its P''),
store the numbers under `results/`, and assemble the paper's tables in the `report` step."""

from __future__ import annotations

from typing import Any

from amc_dist.attacks import build_attack
from amc_dist.evaluation.clean import error_rate
from amc_dist.evaluation.robustness import attack_errors, build_attacks
from amc_dist.events import event
from amc_dist.experiment.amc import Context


def _reporter(ctx: Context, stage: str, setting: str, n: int):
    def on_result(attack: str, error: float) -> None:
        ctx.on_event(event("eval", stage, 0, setting=setting, attack=attack, error_rate=error, n=n))

    return on_result


def whitebox_step(ctx: Context, *, row: str, checkpoint: str) -> None:
    """Clean error (Table 2), white-box errors at Table 1 parameters (Table 3) and under the strong PGD."""
    c, stage = ctx.config, f"eval.{row}"
    model = ctx.target_model(checkpoint)
    split = ctx.evaluation_split
    result: dict[str, Any] = {"row": row, "checkpoint": checkpoint, "n": len(split)}
    result["clean"] = error_rate(model, ctx.task.test.x, ctx.task.test.y)
    ctx.on_event(event("eval", stage, 0, setting="clean", attack="none", error_rate=result["clean"],
                       n=len(ctx.task.test)))  # fmt: skip
    report = _reporter(ctx, stage, "whitebox", len(split))
    result["whitebox"] = attack_errors(
        model, split.x, split.y, build_attacks(c.attacks.whitebox), on_result=report
    )
    strong = {"pgd_strong": build_attack("pgd", **c.attacks.strong_pgd)}
    result["strong_pgd"] = attack_errors(model, split.x, split.y, strong, labels="true", on_result=report)[
        "pgd_strong"
    ]
    ctx.workspace.write_json(f"results/eval.{row}.json", result)


def blackbox_step(ctx: Context, *, row: str, checkpoint: str, proxy: str) -> None:
    """Errors of the model on examples crafted on its adaptive attacker's P'' (Table 4)."""
    c, stage = ctx.config, f"blackbox.{row}"
    model, p2 = ctx.target_model(checkpoint), ctx.proxy_model(proxy)
    split = ctx.evaluation_split
    report = _reporter(ctx, stage, "blackbox", len(split))
    errors = attack_errors(
        model, split.x, split.y, build_attacks(c.attacks.blackbox), source=p2, on_result=report
    )
    ctx.workspace.write_json(
        f"results/blackbox.{row}.json", {"row": row, "n": len(split), "blackbox": errors}
    )


def report_step(ctx: Context) -> None:
    raise NotImplementedError
