"""The paper's published numbers (Tables 2-6), as plain data, so `results.md` can print them beside ours.

Error rates in percent, exactly as printed (lower is better). Keys follow `results.json`: models
"undefended", "at_<attack>" (adversarial training on one attack), "at_proxy_<attack>" (the same with
examples from the local proxy, the paper's "[P]"), "amc_target", "amc_proxy", "proxy", "amc_loo" (the
cascade without one attack, Table 6, whose column is the attack left out: the paper left out FGSM only, so
a run leaving out another attack has no paper number) and "<model>+fs" (behind feature squeezing); attacks
are our canonical names (fgsm, ead, pgd, vat = the paper's F, E, P, V), with "_stronger" for Table 5's
doubled parameters. Table 2 gives the adversarially trained models only as a mean over the four attacks:
"at_mean" and "at_proxy_mean". Where the paper has no number, there is no key.
"""

from __future__ import annotations

from typing import Any

DATASETS = ("mnist", "svhn", "cifar10")
# The paper's column order: F, E, P, V.
ATTACK_ORDER = ("fgsm", "ead", "pgd", "vat")


def _row(f: float, e: float, p: float, v: float) -> dict[str, float]:
    return dict(zip(ATTACK_ORDER, (f, e, p, v), strict=True))


def _squeezing(normal: tuple[float, float], stronger: tuple[float, float]) -> dict[str, float]:
    return {
        "ead": normal[0],
        "pgd": normal[1],
        "ead_stronger": stronger[0],
        "pgd_stronger": stronger[1],
    }


# Table 2: clean error of every target and proxy model.
_CLEAN = {
    "mnist": {
        "undefended": 0.9,
        "at_mean": 1.4,
        "at_proxy_mean": 1.1,
        "amc_target": 1.4,
        "amc_proxy": 1.1,
        "proxy": 0.2,
    },
    "svhn": {
        "undefended": 3.3,
        "at_mean": 2.7,
        "at_proxy_mean": 3.2,
        "amc_target": 1.3,
        "amc_proxy": 3.5,
        "proxy": 6.0,
    },
    "cifar10": {
        "undefended": 9.5,
        "at_mean": 10.4,
        "at_proxy_mean": 11.7,
        "amc_target": 9.3,
        "amc_proxy": 9.9,
        "proxy": 17.1,
    },
}

# Table 3: white-box error (examples crafted on the model under attack).
_WHITEBOX = {
    "mnist": {
        "undefended": _row(85.4, 86.6, 88.9, 69.3),
        "at_fgsm": _row(5.5, 51.2, 65.9, 42.4),
        "at_ead": _row(74.2, 15.4, 66.4, 50.4),
        "at_pgd": _row(31.6, 27.0, 4.4, 33.1),
        "at_vat": _row(27.6, 40.6, 64.6, 19.6),
        "amc_target": _row(5.1, 8.4, 3.1, 3.2),
    },
    "svhn": {
        "undefended": _row(75.7, 95.0, 97.6, 34.6),
        "at_fgsm": _row(2.7, 94.2, 94.5, 36.9),
        "at_ead": _row(91.6, 8.4, 91.56, 89.9),
        "at_pgd": _row(31.6, 58.3, 29.3, 49.3),
        "at_vat": _row(26.7, 83.6, 94.3, 15.8),
        "amc_target": _row(2.4, 4.9, 25.1, 4.5),
    },
    "cifar10": {
        "undefended": _row(86.2, 94.4, 97.2, 94.4),
        "at_fgsm": _row(12.0, 94.5, 95.1, 36.5),
        "at_ead": _row(90.0, 30.1, 96.7, 50.5),
        "at_pgd": _row(30.7, 35.4, 63.5, 29.3),
        "at_vat": _row(28.9, 70.5, 92.1, 13.0),
        "amc_target": _row(10.6, 23.9, 62.5, 11.0),
    },
}

# Table 4: black-box error (examples crafted on the attacker's proxy P'', label-only interface).
_BLACKBOX = {
    "mnist": {
        "undefended": _row(83.2, 8.7, 81.9, 30.9),
        "at_proxy_fgsm": _row(17.2, 3.68, 25.1, 21.3),
        "at_proxy_ead": _row(82.3, 1.5, 52.3, 28.8),
        "at_proxy_pgd": _row(52.6, 3.78, 21.3, 4.5),
        "at_proxy_vat": _row(31.3, 4.0, 39.5, 27.03),
        "amc_proxy": _row(18.2, 1.3, 20.8, 2.4),
    },
    "svhn": {
        "undefended": _row(72.7, 18.8, 71.4, 31.4),
        "at_proxy_fgsm": _row(62.2, 15.1, 67.4, 27.4),
        "at_proxy_ead": _row(70.8, 12.9, 68.6, 29.1),
        "at_proxy_pgd": _row(64.3, 11.4, 54.0, 25.9),
        "at_proxy_vat": _row(69.4, 15.8, 54.7, 26.8),
        "amc_proxy": _row(55.3, 8.8, 44.5, 19.9),
    },
    "cifar10": {
        "undefended": _row(66.9, 16.0, 44.6, 36.4),
        "at_proxy_fgsm": _row(65.4, 16.0, 43.7, 35.1),
        "at_proxy_ead": _row(66.6, 16.0, 44.2, 35.4),
        "at_proxy_pgd": _row(65.6, 18.3, 43.6, 35.1),
        "at_proxy_vat": _row(65.8, 16.2, 43.7, 34.8),
        "amc_proxy": _row(59.2, 16.1, 41.3, 30.7),
    },
}

# Table 5: AMC (target-hardened) with and without feature squeezing, white-box, at Table 1 ("normal") and
# doubled ("stronger") EAP and PGM parameters. The paper's squeezed numbers come from examples crafted on
# the unsqueezed model (no adaptive attack).
_SQUEEZING = {
    "mnist": {
        "amc_target": _squeezing((8.4, 3.1), (89.7, 98.8)),
        "amc_target+fs": _squeezing((3.1, 2.9), (44.6, 6.73)),
    },
    "svhn": {
        "amc_target": _squeezing((4.9, 25.1), (94.2, 98.1)),
        "amc_target+fs": _squeezing((2.1, 10.1), (39.3, 40.5)),
    },
    "cifar10": {
        "amc_target": _squeezing((23.9, 62.5), (93.9, 97.6)),
        "amc_target+fs": _squeezing((19.2, 49.6), (36.9, 38.2)),
    },
}

# Table 6: leave one attack out, white-box FGSM against the cascade trained on PGM, EAP and VAP only.
_LEAVE_ONE_OUT = {
    "mnist": {
        "undefended": {"fgsm": 85.4},
        "amc_loo": {"fgsm": 15.4},
        "amc_loo+fs": {"fgsm": 14.8},
    },
    "svhn": {
        "undefended": {"fgsm": 75.7},
        "amc_loo": {"fgsm": 12.1},
        "amc_loo+fs": {"fgsm": 11.0},
    },
    "cifar10": {
        "undefended": {"fgsm": 86.2},
        "amc_loo": {"fgsm": 24.7},
        "amc_loo+fs": {"fgsm": 23.9},
    },
}

# Section 6, the paper's summary claims: AMC's absolute gain in robustness (percentage points, averaged over
# the attacks) over adversarial training white-box, over proxy-based adversarial training black-box, and
# from feature squeezing on top of AMC at the normal and the stronger parameters.
CLAIMS = {
    "mnist": {
        "whitebox_gain": 6.225,
        "blackbox_gain": 0.45,
        "fs_gain_normal": 2.65,
        "fs_gain_stronger": 68.9,
    },
    "svhn": {"whitebox_gain": 5.075, "blackbox_gain": 6.25, "fs_gain_normal": 8.9, "fs_gain_stronger": 56.25},
    "cifar10": {"whitebox_gain": 2.65, "blackbox_gain": 2.7, "fs_gain_normal": 8.8, "fs_gain_stronger": 58.2},
}

SECTIONS = ("clean", "whitebox", "blackbox", "squeezing", "leave_one_out")
_TABLES: dict[str, dict[str, Any]] = {
    "clean": _CLEAN,
    "whitebox": _WHITEBOX,
    "blackbox": _BLACKBOX,
    "squeezing": _SQUEEZING,
    "leave_one_out": _LEAVE_ONE_OUT,
}


def paper_numbers(dataset: str) -> dict[str, Any]:
    """The paper's numbers for one dataset: {section: {model: {attack: percent}}}, clean as {model: percent}.

    A fresh copy each call, so a caller may edit it. An unknown dataset (e.g. the user's own) has none: {}.
    """
    if dataset not in DATASETS:
        return {}
    out: dict[str, Any] = {}
    for section, table in _TABLES.items():
        rows = table[dataset]
        out[section] = {model: v if isinstance(v, float) else dict(v) for model, v in rows.items()}
    return out


def paper_value(dataset: str, section: str, model: str, attack: str | None = None) -> float | None:
    """One published number in percent, or None where the paper has none."""
    rows = _TABLES.get(section, {}).get(dataset, {})
    value = rows.get(model)
    if attack is None:
        return value if isinstance(value, float) else None
    return value.get(attack) if isinstance(value, dict) else None
