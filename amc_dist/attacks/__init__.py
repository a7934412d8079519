"""The paper's four attacks (FGSM, PGM, VAP, EAP), APGD and feature squeezing, batched torch on CPU or GPU."""

from amc_dist.attacks.base import Attack, AttackParamError, AttackParams
from amc_dist.attacks.registry import (
    ATTACK_NAMES,
    PAPER_NAMES,
    PAPER_SETTINGS,
    attack_for,
    build_attack,
    build_attacks,
    canonical_name,
    params_class,
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
    "build_attack",
    "build_attacks",
    "canonical_name",
    "params_class",
    "warn_advice",
]
