"""Attacks by name: ours (fgsm, pgd, vat, ead, apgd, apgd_t, square) and the paper's (FGSM, PGM, VAP, EAP),
case-insensitive.

`apgd`, `apgd_t` (Croce & Hein 2020) and `square` (Andriushchenko et al. 2020) are not the paper's: they
make up the AutoAttack-style suites every report is also given (evaluation/suite.py).
A config may also name *instances* of an attack kind, each with its own parameters and a `kind`
(`pgd_l2: {kind: pgd, ord: 2, eps: 2.0}`), so one run can train PGD under several norms; an instance's
name is used wherever an attack's is (cascade order, baselines, mixtures, sweeps).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from amc_dist.attacks.apgd import APGD
from amc_dist.attacks.apgd_targeted import APGDT
from amc_dist.attacks.base import Attack, AttackParamError, AttackParams
from amc_dist.attacks.ead import EAD
from amc_dist.attacks.fgsm import FGSM
from amc_dist.attacks.pgd import PGD
from amc_dist.attacks.square import Square
from amc_dist.attacks.vat import VAT

_ATTACKS: dict[str, type[Attack]] = {cls.name: cls for cls in (FGSM, PGD, VAT, EAD, APGD, APGDT, Square)}
ATTACK_NAMES = tuple(_ATTACKS)
PAPER_NAMES = {"fgsm": "FGSM", "pgd": "PGM", "vat": "VAP", "ead": "EAP"}
_ALIASES = {paper.lower(): name for name, paper in PAPER_NAMES.items()}

# What the paper's authors' code ran (their public Keras/TF1 code, Cleverhans of January 2018), where it
# differs from the defaults (their SVHN and CIFAR-10 values); configs/*.yaml hold the paper's Table 1,
# which differs in places (e.g. EAD's binary_search_steps 5 on MNIST), except MNIST's FGSM eps: 0.3 as
# the authors ran, not Table 1's 0.1.
PAPER_SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "mnist": {
        "fgsm": {"eps": 0.3},
        "ead": {"binary_search_steps": 4, "max_iterations": 8, "initial_const": 1e-3},
        "pgd": {"eps": 0.3, "nb_iter": 15},
        "vat": {"xi": 1.0, "num_iterations": 6, "eps": 5.0},
    },
    "cifar10": {"fgsm": {}, "ead": {}, "pgd": {}, "vat": {}},
    "svhn": {"fgsm": {}, "ead": {"initial_const": 0.3, "learning_rate": 0.2}, "pgd": {}, "vat": {}},
}


def canonical_name(name: str) -> str:
    """Our name for an attack given ours or the paper's, in any case: `PGM` -> `pgd`."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _ATTACKS:
        known = ", ".join([*ATTACK_NAMES, *PAPER_NAMES.values()])
        raise AttackParamError(f"unknown attack {name!r}: use one of {known}")
    return key


# An instance's name: lowercase, so it cannot be confused with the paper's upper-case names.
_INSTANCE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def is_kind(name: str) -> bool:
    """Whether `name` is an attack kind (ours or the paper's, any case) rather than an instance's name."""
    key = str(name).strip().lower()
    return _ALIASES.get(key, key) in _ATTACKS


def attack_key(name: str) -> str:
    """The name a config keys an attack by: our name of a kind (`PGM` -> `pgd`), else an instance's name
    as given (`pgd_l2`), which must be lowercase letters, digits and underscores."""
    if is_kind(name):
        return canonical_name(name)
    text = str(name).strip()
    if not _INSTANCE_NAME.match(text):
        canonical_name(text)  # raises: neither an attack nor an instance's name
    return text


def split_kind(name: str, raw: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """(kind, parameters) of a config entry `name: raw`: a kind's entry may repeat its kind; an instance's
    entry must give it (`kind: pgd`)."""
    params = dict(raw or {})
    given = params.pop("kind", None)
    if is_kind(name):
        kind = canonical_name(name)
        if given is not None and canonical_name(given) != kind:
            raise AttackParamError(f"{name}: kind {given!r} differs from the attack it names ({kind})")
        return kind, params
    if given is None:
        known = ", ".join([*ATTACK_NAMES, *PAPER_NAMES.values()])
        raise AttackParamError(
            f"unknown attack {name!r}: use one of {known}, or name an instance's kind ({name}: {{kind: pgd}})"
        )
    return canonical_name(given), params


def kind_of(params: AttackParams) -> str:
    """The attack kind whose typed parameters these are."""
    for cls in _ATTACKS.values():
        if type(params) is cls.Params:
            return cls.name
    raise TypeError(f"not the parameters of a known attack: {type(params).__name__}")


def params_class(name: str) -> type[AttackParams]:
    """The typed parameters of attack `name` (ours or the paper's): the one schema configs resolve to."""
    return _ATTACKS[canonical_name(name)].Params


def warn_advice(where: str, params: AttackParams) -> None:
    """Give the parameters' advisory warnings, each prefixed with where the parameters were set."""
    for text in params.advice():
        warnings.warn(f"{where}: {text}", UserWarning, stacklevel=3)


def build_attack(name: str, **params: Any) -> Attack:
    """Validate raw parameters (warning about odd but valid ones) and build the attack: cheap and free
    of side effects beyond the warnings."""
    cls = _ATTACKS[canonical_name(name)]
    typed = cls.parse(**params)
    warn_advice(cls.name, typed)
    return cls(typed)


def attack_for(params: AttackParams) -> Attack:
    """The attack whose typed parameters these are (a config's, resolved and warned about at load)."""
    return _ATTACKS[kind_of(params)](params)


def build_attacks(
    params: Mapping[str, AttackParams | Mapping[str, Any]], names: Iterable[str] | None = None
) -> dict[str, Attack]:
    """{name: attack} for a config section such as `config.attacks.whitebox` (typed parameters), or for
    `names` from it, each keyed by our name of its kind or its instance's name; raw parameter mappings
    (an instance's with its `kind`) are validated as `build_attack` does."""
    chosen = list(params) if names is None else list(names)
    missing = [name for name in chosen if name not in params]
    if missing:
        raise AttackParamError(f"no parameters configured for attacks {missing}")
    built = {}
    for name in chosen:
        given = params[name]
        if isinstance(given, AttackParams):
            attack = attack_for(given)
        else:
            kind, raw = split_kind(name, given)
            attack = build_attack(kind, **raw)
        if is_kind(name) and attack.name != canonical_name(name):
            raise AttackParamError(f"{name}: given the parameters of {attack.name}")
        built[attack_key(name)] = attack
    return built
