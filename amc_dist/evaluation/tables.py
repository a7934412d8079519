"""`results.md`: the paper's Tables 2-6 and our beyond-the-paper tables, from `results.json` content.

One function per table, each given the results and the paper's numbers for the dataset and returning its
markdown lines (none when its section is empty). Error rates print in percent with one decimal, "12.3
(paper 5.1)" where the paper published a number for the same model and attack, with the mean over the four
attacks, since the paper's central claim compares means.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amc_dist.attacks import PAPER_NAMES
from amc_dist.evaluation.paper import ATTACK_ORDER, paper_numbers
from amc_dist.evaluation.results import ATTACK_LETTERS, central_claim, row_mean
from amc_dist.evaluation.results import build_results as build_results  # experiment/evaluate.py, tests

SQUEEZING_COLUMNS = ("ead", "pgd", "ead_stronger", "pgd_stronger")
Table = list[str]  # markdown lines, starting with a blank line and the title; empty for an empty section


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


def _attack_grid(ours: Mapping[str, Mapping[str, float]], paper: Mapping[str, Any]) -> list[str]:
    """Rows = models, columns F/E/P/V in the paper's order plus the mean; extra attacks after them."""
    extra = [a for row in ours.values() for a in row if a not in ATTACK_ORDER]
    columns = [*ATTACK_ORDER, *dict.fromkeys(extra)]
    header = [
        "model",
        *(f"{ATTACK_LETTERS[a]} ({PAPER_NAMES[a]})" if a in ATTACK_LETTERS else a for a in columns),
        "mean",
    ]
    rows = []
    for model, row in ours.items():
        published = paper.get(model, {})
        cells = [cell(row.get(a), published.get(a)) if a in row else "–" for a in columns]
        rows.append([model, *cells, cell(row_mean(row), row_mean(published))])
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


def table2_clean(results: Mapping[str, Any], paper: Mapping[str, Any]) -> Table:
    """Table 2: clean error, with the mean of the single-attack AT models (all the paper gives for them)."""
    clean = results.get("clean")
    if not clean:
        return []
    published = paper.get("clean", {})
    rows = [[m, cell(v, published.get(m))] for m, v in clean.items()]
    for label, prefix, exclude in (("at_mean", "at_", "at_proxy_"), ("at_proxy_mean", "at_proxy_", None)):
        members = [
            v for m, v in clean.items() if m.startswith(prefix) and not (exclude and m.startswith(exclude))
        ]
        if members and label not in clean:
            n = len(members)
            name = f"{label} ({n} model{'s' if n > 1 else ''})"
            rows.append([name, cell(sum(members) / n, published.get(label))])
    split = results.get("meta", {}).get("clean_split", "held-out test split")
    return ["", f"## Table 2: clean error ({split})", "", *_table(["model", "error %"], rows)]


def _attack_table(
    results: Mapping[str, Any],
    paper: Mapping[str, Any],
    section: str,
    title: str,
    prefix: str,
    exclude: str | None,
) -> Table:
    if not results.get(section):
        return []
    published = paper.get(section, {})
    claim = results.get("summary", {}).get("claims", {}).get(section)
    return [
        "",
        title,
        "",
        *_attack_grid(results[section], published),
        *_claim_text(claim, published, prefix, exclude),
    ]


def table3_whitebox(results: Mapping[str, Any], paper: Mapping[str, Any]) -> Table:
    """Table 3: white-box error per attack and the mean, then the central claim against the AT models."""
    title = "## Table 3: white-box error (examples crafted on the model itself, Table 1 parameters)"
    return _attack_table(results, paper, "whitebox", title, "at_", "at_proxy_")


def table4_blackbox(results: Mapping[str, Any], paper: Mapping[str, Any]) -> Table:
    """Table 4: black-box error per attack and the mean, then the central claim against the AT proxies."""
    title = "## Table 4: black-box error (examples crafted on the attacker's proxy P'')"
    return _attack_table(results, paper, "blackbox", title, "at_proxy_", None)


def table5_squeezing(results: Mapping[str, Any], paper: Mapping[str, Any]) -> Table:
    """Table 5: feature squeezing, normal and stronger EAP/PGM, rows bare, `+fs` and `+fs_bpda`."""
    squeezing = results.get("squeezing")
    if not squeezing:
        return []
    published = paper.get("squeezing", {})
    header = ["model", "EAP", "PGM", "EAP stronger", "PGM stronger"]
    rows = [
        [m, *(cell(row.get(c), published.get(m, {}).get(c)) if c in row else "–" for c in SQUEEZING_COLUMNS)]
        for m, row in squeezing.items()
    ]
    return [
        "",
        "## Table 5: feature squeezing (white-box; normal = Table 1, stronger = doubled parameters)",
        "",
        "`+fs`: examples crafted on the bare model, classified through the squeezer (what the paper "
        "did). `+fs_bpda`: crafted through the squeezer with a straight-through gradient (adaptive). A "
        "squeezer that defends keeps `+fs_bpda` low; one that only masks gradients does not.",
        "",
        *_table(header, rows),
    ]


def table6_leave_one_out(results: Mapping[str, Any], paper: Mapping[str, Any]) -> Table:
    """Table 6: each leave-one-out cascade's white-box error under the attack it left out."""
    loo = results.get("leave_one_out")
    if not loo:
        return []
    published = paper.get("leave_one_out", {})
    columns = list(dict.fromkeys(a for row in loo.values() for a in row))
    header = ["model", *(f"{ATTACK_LETTERS.get(a, a)} ({PAPER_NAMES.get(a, a)})" for a in columns)]
    rows = [
        [m, *(cell(row.get(a), published.get(m, {}).get(a)) if a in row else "–" for a in columns)]
        for m, row in loo.items()
    ]
    title = "## Table 6: leave one attack out (white-box, the attack left out of the cascade)"
    return ["", title, "", *_table(header, rows)]


def strong_pgd_table(results: Mapping[str, Any], paper: Mapping[str, Any]) -> Table:
    """Beyond the paper: white-box error under a standard strong PGD beside the Table 1 mean."""
    strong = results.get("strong_pgd")
    if not strong:
        return []
    params = results.get("meta", {}).get("strong_pgd")
    described = "" if not params else " (" + ", ".join(f"{k} {v}" for k, v in params.items()) + ")"
    rows = [
        [m, percent(v), percent(row_mean(results.get("whitebox", {}).get(m, {})))] for m, v in strong.items()
    ]
    return [
        "",
        f"## Beyond the paper: white-box error under a standard strong PGD{described}",
        "",
        *_table(["model", "strong PGD", "mean over F/E/P/V (Table 1)"], rows),
    ]


_WORST_PARAMS = (("strong_pgd", "strong PGD"), ("apgd", "APGD"), ("apgd_t", "APGD-T"), ("square", "Square"))


def worst_case_table(results: Mapping[str, Any], paper: Mapping[str, Any]) -> Table:
    """Beyond the paper: each model's error under strong PGD and the AutoAttack-style suite (cumulative
    by stage), their worst case, and the gradient-masking flag (images only Square fooled)."""
    worst = results.get("worst_case")
    if not worst:
        return []
    params = results.get("meta", {}).get("worst_case") or {}
    described = "; ".join(
        f"{label}: " + ", ".join(f"{k} {v}" for k, v in params[key].items())
        for key, label in _WORST_PARAMS
        if params.get(key)
    )
    columns = {
        "pgd_strong": "strong PGD",
        "apgd_ce": "APGD-CE",
        "apgd_t": "+APGD-T",
        "square": "+Square",
        "worst_case": "worst case",
    }
    rows = [[m, *(percent(row.get(c)) for c in columns), _masking_flag(row)] for m, row in worst.items()]
    return [
        "",
        "## Beyond the paper: worst case of strong PGD and APGD-CE, APGD-T, Square (white-box, true labels)",
        "",
        "APGD (Croce and Hein 2020) adapts its step size, so no hand-picked step hides a model's weakness; "
        "APGD-T and Square run, as in AutoAttack, only on the images the attacks before them left (their "
        "columns count the images fooled so far). An image counts in the worst case when any attack "
        "misclassifies it. FLAG: Square, which needs no gradient, fooled images the white-box attacks "
        "left: the model masks gradients and its white-box numbers overstate it."
        + (f" Parameters: {described}." if described else ""),
        "",
        *_table(["model", *columns.values(), "gradient masking"], rows, numeric=False),
    ]


def _masking_flag(row: Mapping[str, float]) -> str:
    share = row.get("blackbox_only")
    if share is None:
        return "-"
    return f"FLAG: Square alone {percent(share)}" if share > 0 else "no"


def smell_tests_table(results: Mapping[str, Any], paper: Mapping[str, Any]) -> Table:
    """Beyond the paper: the gradient-masking smell tests, one row per check and model."""
    smell_tests = results.get("smell_tests")
    if not smell_tests:
        return []
    rows = [r for m, smell in smell_tests.items() for r in _smell_rows(m, smell)]
    return [
        "",
        "## Beyond the paper: gradient-masking smell tests (Athalye, Carlini and Wagner 2018)",
        "",
        "FLAG marks a symptom of gradient masking: the model's white-box numbers above then overstate "
        "its robustness. `+fs_bpda`: the model behind the squeezer, attacked through it with BPDA. The "
        "transfer check crafts on a black-box proxy of the model (its P''); without one it is skipped.",
        "",
        *_table(["model", "check", "numbers (error %)", "verdict"], rows, numeric=False),
    ]


TABLES = (
    table2_clean,
    table3_whitebox,
    table4_blackbox,
    table5_squeezing,
    table6_leave_one_out,
    strong_pgd_table,
    worst_case_table,
    smell_tests_table,
)


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
    for table in TABLES:
        out += table(results, paper)
    return "\n".join(out) + "\n"
