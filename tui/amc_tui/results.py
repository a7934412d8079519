"""A finished run's result tables (Tables 2-6 and the beyond-the-paper ones) for the dashboard.

The report step renders `results.json` into `results.md` with the project's one table renderer
(amc_dist/evaluation/tables.py, which imports torch through the attack registry); the dashboard reads
those tables back out of `results.md` instead of rendering them a second way.
"""

from __future__ import annotations

from dataclasses import dataclass

from amc_dist import storage


@dataclass(frozen=True)
class ResultTable:
    title: str
    header: list[str]
    rows: list[list[str]]


def read_text(run_dir: str, name: str) -> str | None:
    """A run's text artifact (results.md, ...), None while it does not exist."""
    url = storage.join(run_dir, name)
    try:
        return storage.read_bytes(url).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _is_rule(line: str) -> bool:
    return set(line.replace("|", "").strip()) <= set("-: ") and "-" in line


def parse_tables(markdown: str) -> list[ResultTable]:
    """Every pipe table of a markdown text, titled by the heading above it."""
    tables: list[ResultTable] = []
    title = ""
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("#"):
            title = line.lstrip("#").strip()
        elif line.startswith("|") and i + 1 < len(lines) and _is_rule(lines[i + 1]):
            header = _cells(line)
            rows = []
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = _cells(lines[i])
                rows.append((cells + [""] * len(header))[: len(header)])
                i += 1
            tables.append(ResultTable(title, header, rows))
            continue
        i += 1
    return tables
