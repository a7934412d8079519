"""The worst case over strong attacks at the dataset's standard budget: strong PGD, APGD-CE and APGD-DLR.

The paper's attacks use hand-picked, partly tiny step sizes (its PGM cannot cross an eps 0.3 ball), so
every model is also attacked at the standard budget by a strong PGD and by APGD (Croce and Hein 2020),
whose step size adapts by itself, with the cross-entropy and with the scale-free DLR loss. An image counts
against the model in the worst case when any of the three fools it: the per-image union, not the largest
of the three rates, as AutoAttack reports robustness.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from amc_dist.attacks import Attack, attack_for
from amc_dist.config import AttacksConfig, SqueezeConfig
from amc_dist.evaluation.robustness import error_of, transfer_wrong
from amc_dist.evaluation.squeezing import squeezed_wrong

STRONG_ATTACKS = ("pgd_strong", "apgd_ce", "apgd_dlr")
WORST = "worst_case"


def strong_attacks(attacks: AttacksConfig) -> dict[str, Attack]:
    """The config's strong PGD, and its APGD with each loss (both at the strong PGD's budget)."""
    apgd = attacks.apgd
    return {
        "pgd_strong": attack_for(attacks.strong_pgd),
        "apgd_ce": attack_for(apgd.model_copy(update={"loss": "ce"})),
        "apgd_dlr": attack_for(apgd.model_copy(update={"loss": "dlr"})),
    }


def worst_case_params(attacks: AttacksConfig) -> dict[str, dict]:
    """The strong attacks' parameters as reports print them (APGD runs both losses, so none is shown)."""
    apgd = {k: v for k, v in attacks.apgd.headline().items() if k != "loss"}
    return {"strong_pgd": attacks.strong_pgd.headline(), "apgd": apgd}


def strong_event(attack: str) -> tuple[str, str]:
    """(setting, attack) of the progress event for one strong-attack number."""
    if attack == "pgd_strong":
        return "strong_pgd", "strong_pgd"
    return ("apgd" if attack.startswith("apgd") else attack), attack


def worst_case(wrong: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """{attack: error, ..., "worst_case": error}: each attack's error rate, and the share of images that
    at least one of them misclassifies (per-image masks over the same images)."""
    masks = list(wrong.values())
    union = torch.stack(masks).any(0)
    return {**{attack: error_of(mask) for attack, mask in wrong.items()}, WORST: error_of(union)}


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
