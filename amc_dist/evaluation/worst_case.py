"""The worst case over strong attacks at the dataset's standard budget: strong PGD and the threat model's
AutoAttack-style suite (APGD-CE, then APGD-T, then Square, each on the images still robust).

The paper's attacks use hand-picked, partly tiny step sizes (its PGM cannot cross an eps 0.3 ball), so
every model is also attacked at the standard budget by a strong PGD and by the suite of
`evaluation/suite.py`, whose APGD adapts its step size by itself and whose Square Attack needs no
gradient at all. An image counts against the model in the worst case when any of them fools it: the
per-image union, not the largest of the rates, as AutoAttack reports robustness. The suite's columns
are cumulative (`apgd_t`: fooled by APGD-CE or APGD-T); `square` above `apgd_t` means Square fooled
images the white-box attacks left: a sign of gradient masking, flagged in the report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from amc_dist.attacks import attack_for
from amc_dist.config import AttacksConfig, SqueezeConfig
from amc_dist.evaluation.robustness import error_of, transfer_wrong
from amc_dist.evaluation.squeezing import squeezed_wrong
from amc_dist.evaluation.suite import SuiteParams, ThreatSuite, masked

STRONG_ATTACKS = ("pgd_strong", "apgd_ce", "apgd_t", "square")
SUITE_STAGES = STRONG_ATTACKS[1:]
WORST = "worst_case"
MASKED = "blackbox_only"


def suite_params(attacks: AttacksConfig) -> SuiteParams:
    """The config's suite at the strong PGD's budget: APGD as configured, APGD-T and Square as set."""
    apgd = attacks.apgd
    return SuiteParams(
        ord=apgd.ord,
        eps=apgd.eps,
        n_iter=apgd.n_iter,
        n_restarts=apgd.n_restarts,
        n_targets=attacks.apgd_targets,
        n_queries=attacks.square_queries,
        rho=apgd.rho,
        seed=apgd.seed,
        clip_min=apgd.clip_min,
        clip_max=apgd.clip_max,
        batch_size=apgd.batch_size,
    )


def strong_attacks(attacks: AttacksConfig) -> dict[str, object]:
    """The config's strong PGD, and the suite at its budget (one column per stage)."""
    return {"pgd_strong": attack_for(attacks.strong_pgd), "suite": ThreatSuite(suite_params(attacks))}


def worst_case_params(attacks: AttacksConfig) -> dict[str, dict]:
    """The strong attacks' parameters as reports print them."""
    suite = suite_params(attacks)
    return {
        "strong_pgd": attacks.strong_pgd.headline(),
        "apgd": {k: v for k, v in attacks.apgd.headline().items() if k != "loss"},
        "apgd_t": {"n_targets": suite.targets()},
        "square": {"n_queries": suite.n_queries},
    }


def strong_event(attack: str) -> tuple[str, str]:
    """(setting, attack) of the progress event for one strong-attack number."""
    if attack == "pgd_strong":
        return "strong_pgd", "strong_pgd"
    return ("apgd" if attack in SUITE_STAGES else attack), attack


def worst_case(wrong: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """{attack: error, ..., "worst_case": error}: each attack's error rate, and the share of images that
    at least one of them misclassifies (per-image masks over the same images); with the suite's columns,
    also "blackbox_only", the share only Square fooled."""
    masks = list(wrong.values())
    union = torch.stack(masks).any(0)
    errors = {attack: error_of(mask) for attack, mask in wrong.items()}
    if all(stage in errors for stage in SUITE_STAGES):
        errors[MASKED] = masked(errors, SUITE_STAGES, ("square",))
    return {**errors, WORST: error_of(union)}


def worst_case_errors(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: AttacksConfig,
    *,
    name: str = "model",
    squeeze: SqueezeConfig | nn.Module | None = None,
    on_result: Callable[[str, str, float], None] | None = None,
) -> dict[str, dict[str, float]]:
    """{row: worst_case(...)} of `model` under the strong attacks, white-box with the true labels. Rows:
    `name`, and with a squeezer also `name+fs` (the same examples through it) and `name+fs_bpda` (crafted
    through it with BPDA), as in Table 5. `on_result(row, attack, error)` is called as each number is known,
    the worst case last (attack "worst_case")."""
    built = strong_attacks(attacks)
    if squeeze is None:
        relay = None if on_result is None else (lambda attack, errors: on_result(name, attack, errors[name]))
        wrong = transfer_wrong({name: model}, x, y, built, source=model, labels="true", on_result=relay)
    else:
        wrong = squeezed_wrong(model, x, y, built, squeeze, name=name, labels="true", on_result=on_result)
    table = {row: worst_case(masks) for row, masks in wrong.items()}
    if on_result is not None:
        for row, errors in table.items():
            on_result(row, WORST, errors[WORST])
    return table
