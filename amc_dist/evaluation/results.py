"""`results.json`: our error rates in the paper's table shapes, validated, with means and the central claim.

It takes plain dicts of numbers (error rates as fractions in [0, 1]), so it can be built and checked
without a model in sight; `tables.render_markdown` prints it as `results.md`. The summary holds the means
over the four attacks, since the paper's central claim compares means: AMC's mean white-box error against
the best single-attack adversarially trained model's.

Schema of `build_results` (each section optional, empty when not evaluated):
    dataset        str
    units          "fraction"
    clean          {model: error}
    whitebox       {model: {attack: error}}            Table 3 (attacks: fgsm, ead, pgd, vat)
    blackbox       {model: {attack: error}}            Table 4, crafted on the attacker's proxy P''
    squeezing      {model: {column: error}}            Table 5, columns ead, pgd, ead_stronger, pgd_stronger;
                                                       rows <m>, <m>+fs (crafted on <m>), <m>+fs_bpda
    leave_one_out  {model: {attack: error}}            Table 6
    strong_pgd     {model: error}                      beyond the paper: white-box strong PGD
    worst_case     {model: {attack: error}}            beyond the paper: strong PGD and the suite at the
                                                       standard budget (pgd_strong; apgd_ce, apgd_t, square
                                                       cumulative; blackbox_only, Square's alone) and
                                                       `worst_case`, their per-image union
    smell_tests    {model: smell_tests(...) result}    beyond the paper: gradient-masking checks
    summary        {"means": {section: {model: mean}}, "claims": {section: central_claim(...)}}
    meta           free-form settings (attack parameters, split sizes, squeezer, ...)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from amc_dist.attacks import canonical_name
from amc_dist.evaluation.paper import ATTACK_ORDER

ATTACK_LETTERS = {"fgsm": "F", "ead": "E", "pgd": "P", "vat": "V"}  # the paper's column letters
_FROM_LETTER = {letter.lower(): name for name, letter in ATTACK_LETTERS.items()}


def _check_error(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: expected an error rate, got {value!r}")
    value = float(value)
    if not (0.0 <= value <= 1.0):  # also false for NaN
        raise ValueError(f"{where}: error rates are fractions in [0, 1], got {value!r}")
    return value


def _attack_key(name: str) -> str:
    """fgsm/FGSM/PGM/P... -> our canonical name; suffixed columns (`ead_stronger`) keep their suffix."""
    base, sep, suffix = str(name).partition("_")
    base = _FROM_LETTER.get(base.lower(), base)
    try:
        return canonical_name(base) + sep + suffix
    except ValueError:
        return str(name)


def _grid(table: Mapping[str, Mapping[str, Any]] | None, section: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for model, row in (table or {}).items():
        if not isinstance(row, Mapping):
            raise ValueError(f"{section}.{model}: expected {{attack: error}}, got {row!r}")
        out[str(model)] = {_attack_key(a): _check_error(v, f"{section}.{model}.{a}") for a, v in row.items()}
    return out


def _flat(table: Mapping[str, Any] | None, section: str) -> dict[str, float]:
    return {str(m): _check_error(v, f"{section}.{m}") for m, v in (table or {}).items()}


def row_mean(row: Mapping[str, float], attacks: Iterable[str] = ATTACK_ORDER) -> float | None:
    """Mean over the four attacks, or None when the row lacks one (a partial mean would mislead)."""
    attacks = tuple(attacks)
    if not all(a in row for a in attacks):
        return None
    return sum(row[a] for a in attacks) / len(attacks)


def central_claim(
    table: Mapping[str, Mapping[str, float]],
    amc: str,
    baseline_prefix: str,
    exclude_prefix: str | None = None,
) -> dict[str, Any] | None:
    """Does `amc`'s mean error over the four attacks come out below the best single-attack AT model's?

    Baselines are the rows named `baseline_prefix*` (not `exclude_prefix*`) with all four attacks. Also
    given: the paper's own comparison, against the best baseline per attack (a model picked per column).
    None when `amc` or every baseline is missing.
    """
    amc_mean = row_mean(table.get(amc, {}))
    baselines = {
        m: row_mean(row)
        for m, row in table.items()
        if m.startswith(baseline_prefix) and not (exclude_prefix and m.startswith(exclude_prefix))
    }
    baselines = {m: v for m, v in baselines.items() if v is not None}
    if amc_mean is None or not baselines:
        return None
    best = min(baselines, key=baselines.__getitem__)
    per_attack = sum(min(table[m][a] for m in baselines) for a in ATTACK_ORDER) / len(ATTACK_ORDER)
    return {
        "amc": amc,
        "amc_mean": amc_mean,
        "best_single": best,
        "best_single_mean": baselines[best],
        "holds": amc_mean < baselines[best],
        "per_attack_best_mean": per_attack,
    }


def build_results(
    dataset: str,
    *,
    clean: Mapping[str, float] | None = None,
    whitebox: Mapping[str, Mapping[str, float]] | None = None,
    blackbox: Mapping[str, Mapping[str, float]] | None = None,
    squeezing: Mapping[str, Mapping[str, float]] | None = None,
    leave_one_out: Mapping[str, Mapping[str, float]] | None = None,
    strong_pgd: Mapping[str, float] | None = None,
    worst_case: Mapping[str, Mapping[str, float]] | None = None,
    smell_tests: Mapping[str, Mapping[str, Any]] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of `results.json` (schema in this module's docstring), validated: every error rate must
    be a fraction in [0, 1], attack names are made canonical (PGM -> pgd), and means and the central claim
    are added under `summary`. Model order is kept as given: it is the row order of `results.md`."""
    results: dict[str, Any] = {
        "dataset": str(dataset),
        "units": "fraction",
        "clean": _flat(clean, "clean"),
        "whitebox": _grid(whitebox, "whitebox"),
        "blackbox": _grid(blackbox, "blackbox"),
        "squeezing": _grid(squeezing, "squeezing"),
        "leave_one_out": _grid(leave_one_out, "leave_one_out"),
        "strong_pgd": _flat(strong_pgd, "strong_pgd"),
        "worst_case": _grid(worst_case, "worst_case"),
        "smell_tests": {str(m): dict(v) for m, v in (smell_tests or {}).items()},
    }
    means = {
        section: {m: mean for m, row in results[section].items() if (mean := row_mean(row)) is not None}
        for section in ("whitebox", "blackbox")
    }
    claims = {
        "whitebox": central_claim(results["whitebox"], "amc_target", "at_", exclude_prefix="at_proxy_"),
        "blackbox": central_claim(results["blackbox"], "amc_proxy", "at_proxy_"),
    }
    results["summary"] = {"means": means, "claims": claims}
    results["meta"] = dict(meta or {})
    return results
