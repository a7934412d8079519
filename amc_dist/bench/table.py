"""The attack benchmark's table, printed with rich or written as Markdown, from the JSON report's rows."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


COLUMNS = ["model", "setting", "attack", "library", "n", "ex/s", "ours x", "eff.", "success"]
COLUMNS += ["L1", "L2", "Linf", "L1 both", "grad/ex", "fwd/ex"]
NOTES = (
    "ours x: on our rows, our speed / the fastest peer's; on a peer's row, our speed / that peer's. "
    "eff.: our speed / (best input-gradient throughput of the model / our gradient passes per example). "
    "L1/L2/Linf: mean distortion of the successful examples. L1 both, on a peer's row: mean L1 of ours / "
    "the peer's over the examples both turned. grad/ex, fwd/ex: forward passes per example "
    "with and without gradient."
)


def table_rows(report: dict) -> list[list[str]]:
    rows = []
    for r in report["rows"]:
        head = [r["model"], r["setting"], r["attack"], r["library"]]
        if "error" in r:
            rows.append([*head, "-", r["error"][:70], *["" for _ in COLUMNS[6:]]])
            continue
        speed = r.get("speedup_vs_fastest_peer", r.get("ours_speedup"))
        values = [
            r["ex_per_s"],
            speed,
            r.get("efficiency_vs_limit"),
            r["success"],
            r["l1"],
            r["l2"],
            r["linf"],
        ]
        shared = r.get("l1_shared_ours_peer")
        both = "-" if shared is None else f"{_fmt(shared[0])} / {_fmt(shared[1])}"
        passes = [r["grad_passes_per_ex"], r["forward_passes_per_ex"]]
        rows.append([*head, str(r["n"]), *(_fmt(v) for v in values), both, *(_fmt(v) for v in passes)])
    return rows


def print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    title = f"attacks on {report['device']} ({report['threads']} threads, {report['allocator']} allocator)"
    table = Table(title=f"{title}, best of repeats")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in COLUMNS[:4] else "right")
    for row in table_rows(report):
        table.add_row(*row)
    Console(width=200).print(table)
    print(NOTES)


def markdown_table(report: dict) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(report)]
    return "\n".join(lines) + "\n"
