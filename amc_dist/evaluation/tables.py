"""`results.json` and `results.md`: our numbers in the paper's table shapes, the paper's own beside them.

Both functions take plain dicts of numbers (error rates as fractions in [0, 1]), so they can be built and
checked without a model in sight. `results.json` keeps fractions; `results.md` prints percent with one
decimal, "12.3 (paper 5.1)" where the paper published a number for the same model and attack, and the mean
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
    smell_tests    {model: smell_tests(...) result}    beyond the paper: gradient-masking checks
    summary        {"means": {section: {model: mean}}, "claims": {section: central_claim(...)}}
    meta           free-form settings (attack parameters, split sizes, squeezer, ...)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from amc_dist.attacks import PAPER_NAMES, canonical_name
from amc_dist.evaluation.paper import ATTACK_ORDER, paper_numbers

SECTIONS = ("clean", "whitebox", "blackbox", "squeezing", "leave_one_out")
SQUEEZING_COLUMNS = ("ead", "pgd", "ead_stronger", "pgd_stronger")
_LETTER = {"fgsm": "F", "ead": "E", "pgd": "P", "vat": "V"}
_FROM_LETTER = {letter.lower(): name for name, letter in _LETTER.items()}


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


# ---------------------------------------------------------------------------------------------- markdown


def percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}"


def paper_number(value: float) -> str:
    """A published percent as printed: at least one decimal, at most two (27.0, 3.68, 91.56, 4.95)."""
    text = f"{value:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _paper_text(value: float | None) -> str:
    return "" if value is None else f" (paper {paper_number(value)})"


def cell(ours: float | None, paper: float | None) -> str:
    """'12.3 (paper 5.1)': ours in percent with the paper's published percent beside it where it exists."""
    return percent(ours) + _paper_text(paper)


def _table(header: list[str], rows: list[list[str]], numeric: bool = True) -> list[str]:
    """A markdown table; the first column (model names) left-aligned, numbers right-aligned."""
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if i > 0 and numeric else "---" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _paper_mean(row: Mapping[str, float] | None) -> float | None:
    if not row or not all(a in row for a in ATTACK_ORDER):
        return None
    return sum(row[a] for a in ATTACK_ORDER) / len(ATTACK_ORDER)


def _attack_grid(ours: Mapping[str, Mapping[str, float]], paper: Mapping[str, Any]) -> list[str]:
    """Rows = models, columns F/E/P/V in the paper's order plus the mean; extra attacks after them."""
    extra = [a for row in ours.values() for a in row if a not in ATTACK_ORDER]
    columns = [*ATTACK_ORDER, *dict.fromkeys(extra)]
    header = ["model", *(f"{_LETTER[a]} ({PAPER_NAMES[a]})" if a in _LETTER else a for a in columns), "mean"]
    rows = []
    for model, row in ours.items():
        published = paper.get(model, {})
        cells = [cell(row.get(a), published.get(a)) if a in row else "–" for a in columns]
        rows.append([model, *cells, cell(row_mean(row), _paper_mean(published))])
    return _table(header, rows)


def _claim_text(
    claim: Mapping[str, Any] | None, paper_table: Mapping[str, Any], prefix: str, exclude: str | None
) -> list[str]:
    if not claim:
        return []
    verdict = "holds here" if claim["holds"] else "does NOT hold here"
    lines = [
        f"Central claim (mean over the four attacks): {claim['amc']} {percent(claim['amc_mean'], 2)}% vs "
        f"the best single-attack model {claim['best_single']} {percent(claim['best_single_mean'], 2)}%: "
        f"the claim {verdict}. Against the best model picked per attack (the paper's comparison): "
        f"{percent(claim['per_attack_best_mean'], 2)}%."
    ]
    published = {m: r for m, r in paper_table.items() if isinstance(r, Mapping)}
    paper_claim = central_claim(published, claim["amc"], prefix, exclude) if published else None
    if paper_claim:  # the paper's numbers are percent already
        lines.append(
            f"Paper: {paper_claim['amc']} {paper_number(paper_claim['amc_mean'])}% vs "
            f"{paper_claim['best_single']} {paper_number(paper_claim['best_single_mean'])}%, per-attack best "
            f"{paper_number(paper_claim['per_attack_best_mean'])}%."
        )
    return ["", *lines]


def _clean_rows(clean: Mapping[str, float], paper: Mapping[str, float]) -> list[list[str]]:
    rows = [[m, cell(v, paper.get(m))] for m, v in clean.items()]
    # Table 2 gives adversarial training only as a mean over the four single-attack models.
    for label, prefix, exclude in (("at_mean", "at_", "at_proxy_"), ("at_proxy_mean", "at_proxy_", None)):
        members = [
            v for m, v in clean.items() if m.startswith(prefix) and not (exclude and m.startswith(exclude))
        ]
        if members and label not in clean:
            n = len(members)
            name = f"{label} ({n} model{'s' if n > 1 else ''})"
            rows.append([name, cell(sum(members) / n, paper.get(label))])
    return rows


def _smell_rows(model: str, smell: Mapping[str, Any]) -> list[list[str]]:
    def verdict(passed: Any) -> str:
        return "skipped" if passed is None else ("pass" if passed else "FLAG")

    rows = []
    one = smell.get("iterative_beats_one_step")
    if one:
        rows.append(
            [
                model,
                "iterative beats one-step",
                f"eps {one['eps']:g}: FGSM {percent(one['fgsm'])}, PGD {percent(one['pgd'])}",
                verdict(one["passed"]),
            ]
        )
    sweep = smell.get("error_rises_with_eps")
    if sweep:
        points = ", ".join(f"{e:g}: {percent(v)}" for e, v in zip(sweep["eps"], sweep["pgd"], strict=True))
        rows.append(
            [
                model,
                f"error rises to >= {percent(sweep['threshold'])} with eps",
                f"PGD {points}",
                verdict(sweep["passed"]),
            ]
        )
    transfer = smell.get("transfer_not_above_whitebox")
    if transfer:
        if transfer.get("passed") is None:
            numbers = transfer.get("skipped", "")
        else:
            numbers = ", ".join(
                f"{a.upper()} transfer {percent(t)} vs white-box {percent(transfer['whitebox'][a])}"
                for a, t in transfer["transfer"].items()
            )
        rows.append([model, "transfer does not beat white-box", numbers, verdict(transfer.get("passed"))])
    return rows


def render_markdown(results: Mapping[str, Any]) -> str:
    """`results.md`: the paper's Tables 2-6 shaped as published (rows = models, columns F/E/P/V and the mean),
    error in %, "ours (paper X)" where the paper has a number, then the beyond-the-paper sections.
    Sections with no numbers are left out."""
    dataset = results["dataset"]
    paper = paper_numbers(dataset)
    out = [
        f"# Results: {dataset}",
        "",
        "Error rates in % (lower is better) on the attack split unless stated; the paper's published number "
        "in parentheses where it has one for the same model and attack. F, E, P, V = FGSM, EAP (EAD), "
        "PGM (the paper's PGD), VAP (VAT).",
    ]
    if results.get("clean"):
        split = results.get("meta", {}).get("clean_split", "held-out test split")
        out += ["", f"## Table 2: clean error ({split})", ""]
        out += _table(["model", "error %"], _clean_rows(results["clean"], paper.get("clean", {})))
    titles = {
        "whitebox": "## Table 3: white-box error (examples crafted on the model itself, Table 1 parameters)",
        "blackbox": "## Table 4: black-box error (examples crafted on the attacker's proxy P'')",
    }
    claims = results.get("summary", {}).get("claims", {})
    for section, prefix, exclude in (("whitebox", "at_", "at_proxy_"), ("blackbox", "at_proxy_", None)):
        if results.get(section):
            out += ["", titles[section], ""]
            out += _attack_grid(results[section], paper.get(section, {}))
            out += _claim_text(claims.get(section), paper.get(section, {}), prefix, exclude)
    if results.get("squeezing"):
        published = paper.get("squeezing", {})
        out += [
            "",
            "## Table 5: feature squeezing (white-box; normal = Table 1, stronger = doubled parameters)",
            "",
            "`+fs`: examples crafted on the bare model, classified through the squeezer (what the paper "
            "did). `+fs_bpda`: crafted through the squeezer with a straight-through gradient (adaptive). A "
            "squeezer that defends keeps `+fs_bpda` low; one that only masks gradients does not.",
            "",
        ]
        header = ["model", "EAP", "PGM", "EAP stronger", "PGM stronger"]
        rows = [
            [
                m,
                *(
                    cell(row.get(c), published.get(m, {}).get(c)) if c in row else "–"
                    for c in SQUEEZING_COLUMNS
                ),
            ]
            for m, row in results["squeezing"].items()
        ]
        out += _table(header, rows)
    if results.get("leave_one_out"):
        published = paper.get("leave_one_out", {})
        loo = results["leave_one_out"]
        columns = list(dict.fromkeys(a for row in loo.values() for a in row))
        header = ["model", *(f"{_LETTER.get(a, a)} ({PAPER_NAMES.get(a, a)})" for a in columns)]
        rows = [
            [m, *(cell(row.get(a), published.get(m, {}).get(a)) if a in row else "–" for a in columns)]
            for m, row in loo.items()
        ]
        out += ["", "## Table 6: leave one attack out (white-box, the attack left out of the cascade)", ""]
        out += _table(header, rows)
    if results.get("strong_pgd"):
        params = results.get("meta", {}).get("strong_pgd")
        described = "" if not params else " (" + ", ".join(f"{k} {v}" for k, v in params.items()) + ")"
        out += ["", f"## Beyond the paper: white-box error under a standard strong PGD{described}", ""]
        rows = []
        for m, v in results["strong_pgd"].items():
            mean = row_mean(results.get("whitebox", {}).get(m, {}))
            rows.append([m, percent(v), percent(mean)])
        out += _table(["model", "strong PGD", "mean over F/E/P/V (Table 1)"], rows)
    if results.get("smell_tests"):
        out += [
            "",
            "## Beyond the paper: gradient-masking smell tests (REFERENCE.md section 3)",
            "",
            "FLAG marks a symptom of gradient masking: the model's white-box numbers above then overstate "
            "its robustness.",
            "",
        ]
        rows = [r for m, smell in results["smell_tests"].items() for r in _smell_rows(m, smell)]
        out += _table(["model", "check", "numbers (error %)", "verdict"], rows, numeric=False)
    return "\n".join(out) + "\n"
