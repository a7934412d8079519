"""Attacks by name: ours (fgsm, pgd, vat, ead) and the paper's (FGSM, PGM, VAP, EAP), case-insensitive."""

from __future__ import annotations

from typing import Any

from amc_dist.attacks.base import Attack, AttackParamError
from amc_dist.attacks.ead import EAD
from amc_dist.attacks.fgsm import FGSM
from amc_dist.attacks.pgd import PGD
from amc_dist.attacks.vat import VAT

_ATTACKS: dict[str, type[Attack]] = {cls.name: cls for cls in (FGSM, PGD, VAT, EAD)}
ATTACK_NAMES = tuple(_ATTACKS)
PAPER_NAMES = {"fgsm": "FGSM", "pgd": "PGM", "vat": "VAP", "ead": "EAP"}
_ALIASES = {paper.lower(): name for name, paper in PAPER_NAMES.items()}


def canonical_name(name: str) -> str:
    """Our name for an attack given ours or the paper's, in any case: `PGM` -> `pgd`."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _ATTACKS:
        known = ", ".join([*ATTACK_NAMES, *PAPER_NAMES.values()])
        raise AttackParamError(f"unknown attack {name!r}: use one of {known}")
    return key


def build_attack(name: str, **params: Any) -> Attack:
    """Validate the parameters and build the attack: cheap and side-effect free, so configs check with it."""
    return _ATTACKS[canonical_name(name)](**params)
