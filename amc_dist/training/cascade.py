"""The cascade of the paper's Algorithm 2: one adversarial-training stage per attack, in order.

Stage k trains on clean data plus a perturbed part mixed from attacks 1..k (`mixture.py`). It starts
from stage k-1's weights (parameter transfer) or, in the ablation, from the undefended model's. The
examples come from the model being trained (target-hardened) or from a proxy that the caller has
re-fitted to the previous stage through the oracle (local proxy). Each stage is one call of
`train_stage`, so a runner can checkpoint, resume or distribute stages one by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

from amc_dist.attacks import AttackParams, build_attacks
from amc_dist.config import CascadeConfig, TrainingConfig
from amc_dist.events import EventSink, ignore
from amc_dist.training.adversarial import AdversarialMixture
from amc_dist.training.mixture import stage_shares
from amc_dist.training.trainer import Augmenter, EpochStore, Evaluator, fit


@dataclass(frozen=True)
class Stage:
    """Stage `index` (1-based) of a cascade: its attacks (1..index of the order) and their shares."""

    index: int
    attacks: tuple[str, ...]
    shares: tuple[float, ...]
    lambdas: tuple[float, ...] | None

    @property
    def newest(self) -> str:
        return self.attacks[-1]


def cascade_stages(cascade: CascadeConfig) -> list[Stage]:
    lambdas = None if cascade.lambdas == "mixture" else tuple(cascade.lambdas)
    return [
        Stage(k, tuple(cascade.order[:k]), tuple(stage_shares(k, cascade.newest_share)), lambdas)
        for k in range(1, len(cascade.order) + 1)
    ]


def train_stage(
    model: nn.Module,
    stage: Stage,
    x,
    y,
    settings: TrainingConfig,
    epochs: int,
    attack_params: Mapping[str, AttackParams],
    *,
    source: nn.Module | None = None,
    augment: Augmenter | None = None,
    evaluate: Evaluator | None = None,
    on_event: EventSink = ignore,
    name: str | None = None,
    seed: int = 0,
    store: EpochStore | None = None,
) -> nn.Module:
    """Adversarially train `model` in place for one stage and return it."""
    perturb = AdversarialMixture(
        list(build_attacks(attack_params, stage.attacks).values()),
        stage.shares,
        stage.lambdas,
        source=source,
        seed=seed,
    )
    return fit(
        model,
        x,
        y,
        settings,
        epochs=epochs,
        perturb=perturb,
        augment=augment,
        evaluate=evaluate,
        on_event=on_event,
        stage=name or f"stage{stage.index}-{stage.newest}",
        seed=seed,
        store=store,
    )
