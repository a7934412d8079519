"""PNG heatmaps of model x attack error tables: the shape of a defence's robustness at a glance.

A single-attack model shows as one cool cell in a hot row; a defence that holds against every attack as a
cool row. Each cell is annotated with its error in %, so the figure stands on its own. Matplotlib's Agg
backend only: no display is needed, and nothing global (pyplot state, rcParams) is touched.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from amc_dist.attacks import PAPER_NAMES
from amc_dist.evaluation.paper import ATTACK_ORDER
from amc_dist.storage import atomic_write, join

HEATMAP_SECTIONS = {
    "whitebox": "white-box error (%)",
    "blackbox": "black-box error (%), crafted on the proxy P''",
    "squeezing": "error (%) with and without feature squeezing",
}


def _columns(table: Mapping[str, Mapping[str, float]]) -> list[str]:
    present = list(dict.fromkeys(a for row in table.values() for a in row))
    ordered = [a for a in ATTACK_ORDER if a in present]
    return ordered + [a for a in present if a not in ordered]


def _label(attack: str) -> str:
    base, _, suffix = attack.partition("_")
    name = PAPER_NAMES.get(base, base)
    return f"{name}\n{suffix}" if suffix else name


def heatmap_png(
    table: Mapping[str, Mapping[str, float]],
    title: str,
    *,
    columns: Sequence[str] | None = None,
    dpi: int = 120,
) -> bytes:
    """The PNG bytes of a heatmap: rows = models (in the table's order), columns = attacks (the paper's
    F/E/P/V order first), colour and annotation = error in %. Missing cells show a dash."""
    if not table:
        raise ValueError("heatmap_png: the table has no rows")
    models = list(table)
    columns = list(columns) if columns is not None else _columns(table)
    values = np.array(
        [[100 * float(table[m][a]) if a in table[m] else np.nan for a in columns] for m in models]
    )
    figure = Figure(figsize=(1.3 * len(columns) + 2.6, 0.5 * len(models) + 1.6), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(np.ma.masked_invalid(values), cmap="magma_r", vmin=0, vmax=100, aspect="auto")
    axes.set_xticks(range(len(columns)), [_label(a) for a in columns])
    axes.set_yticks(range(len(models)), models)
    axes.tick_params(length=0)
    axes.set_title(title)
    for i in range(len(models)):
        for j in range(len(columns)):
            if np.isfinite(values[i, j]):
                # light text on dark cells, dark text on light ones
                colour = "white" if values[i, j] > 55 else "black"
                axes.text(j, i, f"{values[i, j]:.1f}", ha="center", va="center", color=colour, fontsize=9)
            else:
                axes.text(j, i, "–", ha="center", va="center", color="grey", fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.04, pad=0.03, label="error %")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_heatmaps(results: Mapping[str, Any], directory: str) -> list[str]:
    """Write `<section>.png` under `directory` (local path or fsspec URL) for each model x attack section of
    `results` (as built by `tables.build_results`) that has numbers; returns the URLs written."""
    written = []
    dataset = results.get("dataset", "")
    for section, caption in HEATMAP_SECTIONS.items():
        table = results.get(section)
        if not table:
            continue
        url = join(directory, f"{section}.png")
        with atomic_write(url) as handle:
            handle.write(heatmap_png(table, f"{dataset}: {caption}".lstrip(": ")))
        written.append(url)
    return written
