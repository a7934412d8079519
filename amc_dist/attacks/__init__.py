"""The paper's four attacks (FGSM, PGM, VAP, EAP), APGD and feature squeezing, batched torch on CPU or GPU."""

from amc_dist.attacks.base import Attack, AttackParamError, AttackParams
from amc_dist.attacks.registry import (
    ATTACK_NAMES,
    PAPER_NAMES,
    PAPER_SETTINGS,
    attack_for,
    attack_key,
    build_attack,
    build_attacks,
    canonical_name,
    is_kind,
    kind_of,
    params_class,
    split_kind,
    warn_advice,
)

__all__ = [
    "ATTACK_NAMES",
    "PAPER_NAMES",
    "PAPER_SETTINGS",
    "Attack",
    "AttackParamError",
    "AttackParams",
    "attack_for",
    "attack_key",
    "build_attack",
    "build_attacks",
    "canonical_name",
    "is_kind",
    "kind_of",
    "params_class",
    "split_kind",
    "warn_advice",
]
