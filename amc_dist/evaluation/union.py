"""Union robustness (Maini, Wong and Kolter 2020): an image counts as robust only when no attack of any of
three threat models fools it, Linf eps 0.3, L2 eps 2.0 and L1 eps 10 on MNIST.

Their MSD model keeps 58.4% of MNIST test images correct under this union, the figure AMC is set beside.
Linf and L2 are attacked with APGD-CE and APGD-DLR. L1 with EAD under the L1 decision rule: a
minimum-norm attack, so its example counts only where its L1 distance is within the budget. Every attack's
examples are held to their budget the same way (an example outside it is replaced by the clean image), so
no attack can count a success the threat model does not allow. EAD and VAT at the paper's settings have no
common budget: they stay in the paper's tables, not here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from amc_dist.attacks import Attack, attack_for
from amc_dist.attacks.apgd import APGDParams
from amc_dist.attacks.ead import EADParams
from amc_dist.evaluation.clean import predict
from amc_dist.evaluation.robustness import error_of, transfer_wrong

MSD_UNION_ACCURACY = 58.4  # Maini et al. 2020, Table 1: MSD on MNIST, all attacks, % correct
UNION = "union"


class UnionThreats(BaseModel):
    """The three budgets (Maini et al.'s MNIST values by default) and how hard each is attacked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    linf_eps: float = Field(0.3, gt=0, description="Linf budget")
    l2_eps: float = Field(2.0, gt=0, description="L2 budget")
    l1_eps: float = Field(10.0, gt=0, description="L1 budget")
    apgd_iter: int = Field(100, ge=1, description="APGD iterations per restart (AutoAttack's 100)")
    apgd_restarts: int = Field(1, ge=1, description="APGD random restarts")
    seed: int | None = Field(0, description="seed of APGD's random starts, so a table repeats itself")
    # EAD's own paper ran 9 binary-search steps of 1000 iterations. Measured on the reduced MNIST run's
    # undefended LeNet (200 images, share fooled within L1 10): beta 0.1 / 300 iterations / step 0.01
    # 80%, the same with 1000 iterations 82% at 3.3x the time, beta 0.01 / 100 / 0.1 (the Table 1 flavour)
    # only 40%: its elastic net spreads the change over many pixels. The L1 rule keeps the sparsest success.
    l1_attack: EADParams = Field(
        EADParams(
            beta=0.1,
            binary_search_steps=9,
            max_iterations=300,
            initial_const=0.01,
            learning_rate=0.01,
            abort_early=True,
            decision_rule="L1",
        ),
        description="the L1 attack (EAD); its examples count only within l1_eps",
    )


class WithinBudget:
    """An attack whose examples outside the budget ||x_adv - x||_ord <= eps are replaced by the clean input,
    so the evaluation counts only the successes the threat model allows."""

    def __init__(self, attack: Attack, ord: float, eps: float) -> None:
        self.attack, self.ord, self.eps = attack, ord, eps

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        x_adv = self.attack(model, x, y)
        distance = torch.linalg.vector_norm((x_adv - x).flatten(1), ord=self.ord, dim=1)
        inside = distance <= self.eps * (1 + 1e-5) + 1e-6  # float rounding of a projection onto the sphere
        return torch.where(inside.view(-1, *([1] * (x.dim() - 1))), x_adv, x)


def threat_of(attack: str) -> str:
    """The threat model an attack's name belongs to: its prefix ('linf', 'l2', 'l1')."""
    return attack.split("_", 1)[0]


def union_attacks(threats: UnionThreats) -> dict[str, WithinBudget]:
    """{name: attack held to its budget}, named '<threat>_<attack>'."""
    attacks: dict[str, WithinBudget] = {}
    for threat, ord, eps in (("linf", math.inf, threats.linf_eps), ("l2", 2.0, threats.l2_eps)):
        for loss in ("ce", "dlr"):
            params = APGDParams(
                ord=ord,
                eps=eps,
                n_iter=threats.apgd_iter,
                n_restarts=threats.apgd_restarts,
                loss=loss,
                seed=threats.seed,
            )
            attacks[f"{threat}_apgd_{loss}"] = WithinBudget(attack_for(params), ord, eps)
    attacks["l1_ead"] = WithinBudget(attack_for(threats.l1_attack), 1.0, threats.l1_eps)
    return attacks


def union_errors(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threats: UnionThreats | None = None,
    *,
    on_result: Callable[[str, float], None] | None = None,
) -> dict[str, float]:
    """Error rates (fractions) of `model` on images `x` with true labels `y`: 'clean', each attack, each
    threat model ('linf', 'l2', 'l1': the images any of its attacks fools) and 'union' (the images any
    attack of any threat model fools). A clean mistake counts as an error everywhere. `on_result(name,
    error)` is called as each attack finishes."""
    threats = threats or UnionThreats()
    relay = None if on_result is None else (lambda attack, errors: on_result(attack, errors["model"]))
    attacks = union_attacks(threats)
    wrong = transfer_wrong({"model": model}, x, y, attacks, source=model, labels="true", on_result=relay)
    wrong = wrong["model"]
    clean = predict(model, x) != y.cpu().long()
    errors = {"clean": error_of(clean)}
    errors |= {attack: error_of(mask | clean) for attack, mask in wrong.items()}
    for threat in dict.fromkeys(threat_of(a) for a in wrong):
        masks = [mask for attack, mask in wrong.items() if threat_of(attack) == threat]
        errors[threat] = error_of(torch.stack([clean, *masks]).any(0))
    errors[UNION] = error_of(torch.stack([clean, *wrong.values()]).any(0))
    return errors


def union_table(rows: dict[str, dict[str, float]], threats: UnionThreats, images: int) -> str:
    """Markdown: per model, the error under each threat model and the union, and the union's accuracy
    beside MSD's."""
    lines = [
        f"Per image, the worst case over Linf eps {threats.linf_eps:g} (APGD-CE, APGD-DLR), L2 eps "
        f"{threats.l2_eps:g} (APGD-CE, APGD-DLR) and L1 eps {threats.l1_eps:g} (EAD, L1 rule, counted only "
        f"within the budget); {images} images, error % (accuracy = 100 - union error).",
        "",
        "| model | clean | Linf | L2 | L1 | union | union accuracy |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, e in rows.items():
        cells = [f"{100 * e[k]:.1f}" for k in ("clean", "linf", "l2", "l1", UNION)]
        lines.append(f"| {name} | {' | '.join(cells)} | {100 * (1 - e[UNION]):.1f} |")
    lines.append(
        f"| MSD (Maini et al. 2020, their attacks, full test set) | | | | | | {MSD_UNION_ACCURACY} |"
    )
    return "\n".join(lines) + "\n"
