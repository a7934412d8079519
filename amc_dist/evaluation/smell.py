"""Gradient-masking smell tests, reported, never asserted.

A defence that only hides its gradients looks robust to gradient attacks while staying as fragile as before.
Three symptoms give it away (Athalye, Carlini and Wagner 2018): an iterative attack does no better than a
single step; the error does not climb towards 100% as the budget grows (at Linf eps 0.5 any [0, 1] image can
be pushed to uniform grey, so an attack that works must win almost always); examples transferred from another
model do better than the model's own white-box examples. Each check comes back with its numbers and a
boolean `passed`, so a reader sees the evidence, not just a verdict.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from amc_dist.attacks import Attack, AttackParams, build_attack
from amc_dist.attacks.squeeze import SqueezedModel
from amc_dist.evaluation.robustness import attack_errors

UNBOUNDED_EPS = 0.5
SMELL_SIZE = 500  # images per smell test: an eps sweep is costly


def _strong_pgd(eps: float, nb_iter: int, eps_iter: float | None) -> Attack:
    """A PGD able to reach the edge of its ball: step 2.5 * eps / nb_iter (Madry) unless given larger."""
    step = max(eps_iter or 0.0, 2.5 * eps / nb_iter)
    return build_attack("pgd", eps=eps, eps_iter=step, nb_iter=nb_iter, rand_init=True)


def eps_sweep_grid(eps: float) -> list[float]:
    """eps/2, eps, 2 eps and 4 eps, capped at the unbounded 0.5, which always closes the sweep."""
    grid: list[float] = []
    for value in sorted(min(v, UNBOUNDED_EPS) for v in (eps / 2, eps, 2 * eps, 4 * eps, UNBOUNDED_EPS)):
        if not any(math.isclose(value, seen) for seen in grid):
            grid.append(value)
    return grid


def smell_tests(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    pgd: AttackParams,
    proxy: nn.Module | None = None,
    eps_grid: Sequence[float] | None = None,
    threshold: float = 0.95,
    tolerance: float = 0.02,
) -> dict[str, Any]:
    """Run the three checks on `model` with true labels and return their numbers and verdicts.

    `pgd` is the strong PGD's parameters (config `attacks.strong_pgd`): its eps and nb_iter set the budget.
    - iterative_beats_one_step: PGD error >= FGSM error - tolerance, both at that eps.
    - error_rises_with_eps: along `eps_grid` (default `eps_sweep_grid(eps)`) the PGD error never drops by
      more than `tolerance` and ends at or above `threshold`.
    - transfer_not_above_whitebox (only with a `proxy`): FGSM and PGD examples crafted on the proxy do not
      beat the same attacks crafted on the model by more than `tolerance`; without a proxy it is skipped
      (`passed` None).
    `passed` at the top is True when every check that ran passed.
    """
    eps, nb_iter, eps_iter = pgd.eps, pgd.nb_iter, pgd.eps_iter
    step_attacks = {"fgsm": build_attack("fgsm", eps=eps), "pgd": _strong_pgd(eps, nb_iter, eps_iter)}
    whitebox = attack_errors(model, x, y, step_attacks, labels="true")
    checks: dict[str, Any] = {
        "iterative_beats_one_step": {
            "eps": eps,
            "nb_iter": nb_iter,
            "fgsm": whitebox["fgsm"],
            "pgd": whitebox["pgd"],
            "passed": whitebox["pgd"] >= whitebox["fgsm"] - tolerance,
        }
    }

    grid = sorted(float(e) for e in (eps_grid if eps_grid is not None else eps_sweep_grid(eps)))
    # The point at the budget itself is the PGD just run: reuse it rather than attack twice.
    sweep_attacks = {e: _strong_pgd(e, nb_iter, None) for e in grid if not math.isclose(e, eps)}
    swept = attack_errors(model, x, y, sweep_attacks, labels="true")
    sweep = [whitebox["pgd"] if math.isclose(e, eps) else swept[e] for e in grid]
    monotone = all(later >= earlier - tolerance for earlier, later in itertools.pairwise(sweep))
    checks["error_rises_with_eps"] = {
        "eps": grid,
        "pgd": sweep,
        "threshold": threshold,
        "passed": monotone and sweep[-1] >= threshold,
    }

    if proxy is None:
        checks["transfer_not_above_whitebox"] = {
            "passed": None,
            "skipped": "no black-box proxy of this model",
        }
    else:
        transfer = attack_errors(model, x, y, step_attacks, source=proxy, labels="true")
        checks["transfer_not_above_whitebox"] = {
            "eps": eps,
            "whitebox": dict(whitebox),
            "transfer": transfer,
            "passed": all(transfer[a] <= whitebox[a] + tolerance for a in step_attacks),
        }
    ran = [check["passed"] for check in checks.values() if check["passed"] is not None]
    return {**checks, "tolerance": tolerance, "n": len(x), "passed": all(ran)}


def headline_error(check: str, numbers: Mapping[str, Any]) -> float:
    """The one error rate that stands for a check (in progress events): the number its verdict turns on."""
    if check == "iterative_beats_one_step":
        return numbers["pgd"]
    if check == "error_rises_with_eps":
        return numbers["pgd"][-1]
    return max(numbers["transfer"].values())


def smell_rows(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    pgd: AttackParams,
    name: str = "model",
    proxy: nn.Module | None = None,
    squeezer: nn.Module | None = None,
    size: int = SMELL_SIZE,
    on_result: Callable[[str, str, float, bool], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """{row: smell_tests(...)} for row `name` and, given a squeezer, `name+fs_bpda`: the model behind the
    squeezer attacked through it with BPDA. Its forward pass is exactly the squeezed model's, so the checks
    judge the squeezed model as an adaptive attacker meets it; a squeezer that masks gradients shows there.

    Both rows use the same `size` images, drawn at random with torch's global RNG (data sorted by class
    must not leave them one class); `proxy`, when given, crafts both rows' transfer examples.
    `on_result(row, check, error, passed)` is called for each check that ran (see `headline_error`).
    """
    m = min(size, len(x))
    pick = torch.randperm(len(x))[:m].sort().values
    rows = {name: model}
    if squeezer is not None:
        rows[f"{name}+fs_bpda"] = SqueezedModel(model, squeezer, bpda=True)
    out: dict[str, dict[str, Any]] = {}
    for row, candidate in rows.items():
        out[row] = smell_tests(candidate, x[pick], y[pick], pgd=pgd, proxy=proxy)
        for check, numbers in out[row].items():
            if on_result is not None and isinstance(numbers, dict) and numbers.get("passed") is not None:
                on_result(row, check, headline_error(check, numbers), numbers["passed"])
    return out
