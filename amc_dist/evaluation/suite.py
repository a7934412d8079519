"""One threat model's evaluation suite, AutoAttack's recipe: APGD-CE, then APGD-T, then Square.

A robustness number from one gradient attack overstates models that mask gradients (Linf-trained MNIST
models against L2 and L1 budgets: Tramer and Boneh 2019, Maini et al. 2020), so each threat model gets
the sequence AutoAttack (Croce and Hein 2020) runs, each attack only on the images still robust after
the ones before, every example held to the budget (`WithinBudget`): an image counts as robust only if
none of them fools it. Square Attack runs last and needs no gradient: an image it fools that the
white-box attacks left is a sign of gradient masking (`masked`), AutoAttack's own check. Extra white-box
attacks (EAD under L1) run before Square, so that sign stays clean. FAB-T, which AutoAttack's standard
version runs between APGD-T and Square, is left out unless measurement shows it fools images the others
leave (the benchmark compares this suite with AutoAttack's standard version on the same images). Seeded
by default, so a table repeats itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch
from pydantic import Field, model_validator
from torch import nn

from amc_dist.attacks import attack_for
from amc_dist.attacks.apgd import APGDParams
from amc_dist.attacks.apgd_targeted import APGDTParams
from amc_dist.attacks.base import NormParams, RandomParams
from amc_dist.attacks.square import SquareParams
from amc_dist.evaluation.budget import WithinBudget
from amc_dist.evaluation.clean import predict

SQUARE = "square"


class SuiteParams(NormParams, RandomParams):
    """One threat model's budget and how hard each attack of its suite runs (AutoAttack's defaults)."""

    eps: float = Field(0.3, gt=0, description="radius of the ball the examples stay in (norm `ord`)")
    n_iter: int = Field(100, ge=1, description="APGD-CE and APGD-T iterations per run (AutoAttack's 100)")
    n_restarts: int | None = Field(
        None, ge=1, description="APGD-CE restarts; None = AutoAttack's 1 under Linf and L2, 5 under L1"
    )
    n_targets: int | None = Field(
        None, ge=1, description="APGD-T's target classes; None = AutoAttack's 9 under Linf and L2, 5 under L1"
    )
    n_queries: int = Field(5000, ge=1, description="Square's queries after the first (AutoAttack's 5000)")
    rho: float = Field(0.75, gt=0, le=1, description="APGD's step-size check (AutoAttack's 0.75)")
    seed: int | None = Field(0, description="every attack's seed (a table repeats itself); None = global RNG")

    @model_validator(mode="after")
    def _l1_phases_fit(self) -> SuiteParams:
        if self.ord == 1 and self.n_iter < 3:
            raise ValueError(f"n_iter must be at least 3 under L1 (its 3/2/1 eps phases), got {self.n_iter}")
        return self

    def restarts(self) -> int:
        return self.n_restarts or (5 if self.ord == 1 else 1)

    def targets(self) -> int:
        return self.n_targets or (5 if self.ord == 1 else 9)

    def shared(self) -> dict:
        """What every attack of the suite takes from it: budget, box, chunking, seed."""
        keys = ("ord", "eps", "clip_min", "clip_max", "batch_size", "seed")
        return {k: getattr(self, k) for k in keys}


class SuiteResult(NamedTuple):
    x_adv: torch.Tensor  # per image: the example of the stage that fooled it, else the last stage's try
    stage: torch.Tensor  # per image (CPU): index of the stage whose example x_adv holds; -1 = not attacked
    fooled: torch.Tensor  # per image (CPU): the model misclassifies x_adv (clean mistakes included)


class ThreatSuite:
    """The suite of one threat model, as an attack (`suite(model, x, y) -> x_adv`) and stage by stage
    (`run`). Stage names are `prefix` + apgd_ce, apgd_t, the extra attacks' names, square."""

    def __init__(
        self, params: SuiteParams, *, prefix: str = "", extra: Mapping[str, object] | None = None
    ) -> None:
        p, shared = params, params.shared()
        apgd = {"n_iter": p.n_iter, "rho": p.rho, **shared}
        attacks: dict[str, object] = {
            "apgd_ce": attack_for(APGDParams(loss="ce", n_restarts=p.restarts(), **apgd)),
            "apgd_t": attack_for(APGDTParams(n_restarts=1, n_targets=p.targets(), **apgd)),
            **dict(extra or {}),
            SQUARE: attack_for(SquareParams(n_queries=p.n_queries, **shared)),
        }
        self.params = params
        self.stages = {f"{prefix}{name}": WithinBudget(a, p.ord, p.eps) for name, a in attacks.items()}
        self.stage_names = tuple(self.stages)
        self.blackbox = (f"{prefix}{SQUARE}",)

    @property
    def replaced(self) -> int:
        """Examples outside the budget that `WithinBudget` replaced (any is an attack bug)."""
        return sum(stage.replaced for stage in self.stages.values())

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> SuiteResult:
        """Each stage on the images no stage before it has fooled (against `y`, default the model's own
        predictions); images the model misclassifies clean are not attacked."""
        predicted = predict(model, x)
        y = predicted.clone() if y is None else y.cpu().long()
        fooled = predicted != y
        stage = torch.full((len(x),), -1, dtype=torch.long)
        x_adv = x.clone()
        for index, attack in enumerate(self.stages.values()):
            rows = (~fooled).nonzero().squeeze(1)
            if not len(rows):
                break
            on = rows.to(x.device)
            adv = attack(model, x[on], y[rows].to(x.device))
            x_adv[on] = adv.to(x.dtype)
            stage[rows] = index
            fooled[rows] = predict(model, adv) != y[rows]
        return SuiteResult(x_adv, stage, fooled)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.run(model, x, y).x_adv


def cumulative(wrong: torch.Tensor, stage: torch.Tensor, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """{stage: per-image mask}: the images misclassified (`wrong`) once the stages up to this one have
    run, so the last is the suite's worst case (clean mistakes count from the first)."""
    return {name: wrong & (stage <= index) for index, name in enumerate(names)}


def masked(errors: Mapping[str, float], names: tuple[str, ...], blackbox: tuple[str, ...]) -> float:
    """The share of images only the black-box stages fooled (cumulative errors by stage): above zero,
    the white-box attacks were misled, the sign of gradient masking AutoAttack warns about."""
    share, before = 0.0, 0.0
    for name in names:
        if name in blackbox:
            share += errors[name] - before
        before = errors[name]
    return max(share, 0.0)
