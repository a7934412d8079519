"""Every number the paper published reaches `results.md`, beside the number of the row our experiment
writes for that model (row names from `model_rows` and `squeezed_errors`, as `amc run` produces them)."""

from itertools import count
from pathlib import Path

import pytest
import torch
from torch import nn

from amc_dist.config import load_config
from amc_dist.evaluation.paper import ATTACK_ORDER, DATASETS, paper_numbers
from amc_dist.evaluation.results import build_results
from amc_dist.evaluation.squeezing import squeezed_errors
from amc_dist.evaluation.tables import SQUEEZING_COLUMNS, cell, paper_number, render_markdown
from amc_dist.experiment.rows import blackbox_rows, model_rows

TINY = Path(__file__).parent / "configs" / "tiny.yaml"
TITLES = {
    "clean": "## Table 2",
    "whitebox": "## Table 3",
    "blackbox": "## Table 4",
    "squeezing": "## Table 5",
    "leave_one_out": "## Table 6",
}
MEAN_ROWS = ("at_mean", "at_proxy_mean")  # Table 2 derives them from the single-attack rows


def full_config(leave_out):
    return load_config(
        TINY,
        [
            "experiment.baselines=true",
            "cascade.order=[fgsm, vat, ead, pgd]",
            f"experiment.leave_out={leave_out}",
        ],
    )


def squeezed_rows(name, columns, fill):
    """The rows `squeezed_errors` writes for model `name` (bare, +fs, +fs_bpda), each cell refilled with
    a distinct error rate so that a cell's text names exactly one (row, column)."""
    x, y = torch.rand(2, 1, 2, 2), torch.tensor([0, 1])
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    rows = squeezed_errors(
        model, x, y, {c: lambda m, xb, yb=None: xb for c in columns}, nn.Identity(), name=name
    )
    return {row: {c: fill() for c in errors} for row, errors in rows.items()}


def run_results(dataset, leave_out):
    """results.json content of a run with every variant and baseline, each cell a distinct error rate."""
    config = full_config(leave_out)
    rows = model_rows(config)
    assert "amc_loo" in rows  # the row the leave-one-out cascade is evaluated under
    fill = (k / 1000 for k in count(1)).__next__  # 0.1%, 0.2%, ...: distinct with one decimal
    return build_results(
        dataset,
        clean={row: fill() for row in [*rows, "proxy"]},
        whitebox={row: {a: fill() for a in ATTACK_ORDER} for row in rows},
        blackbox={row: {a: fill() for a in ATTACK_ORDER} for row in blackbox_rows(config)},
        squeezing=squeezed_rows("amc_target", SQUEEZING_COLUMNS, fill),
        leave_one_out={"undefended": {leave_out: fill()}, **squeezed_rows("amc_loo", [leave_out], fill)},
    )


def table_lines(markdown, section):
    """The lines of one table section of results.md, title to the next title."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(TITLES[section]))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def row_line(lines, model):
    prefix = f"| {model} (" if model in MEAN_ROWS else f"| {model} |"
    matches = [line for line in lines if line.startswith(prefix)]
    assert len(matches) == 1, f"row {model!r}: {matches}"
    return matches[0]


@pytest.mark.parametrize("dataset", DATASETS)
def test_each_paper_number_appears_beside_ours_in_its_row_and_column(dataset):
    results = run_results(dataset, "fgsm")
    markdown = render_markdown(results)
    checked = 0
    for section, table in paper_numbers(dataset).items():
        lines = table_lines(markdown, section)
        for model, published in table.items():
            line = row_line(lines, model)
            cells = published.items() if isinstance(published, dict) else [(None, published)]
            for column, value in cells:
                if model in MEAN_ROWS:
                    assert f"(paper {paper_number(value)})" in line, (section, model)
                    continue
                ours = results[section][model] if column is None else results[section][model][column]
                assert cell(ours, value) in line, (section, model, column, line)
                checked += 1
    assert checked == 63  # Tables 2-6 print 65 numbers a dataset, 2 of them Table 2's means


def test_a_run_leaving_out_another_attack_shows_no_leave_one_out_paper_number():
    """The paper left out FGSM only: a cascade without PGM has nothing published to sit beside."""
    markdown = render_markdown(run_results("mnist", "pgd"))
    lines = table_lines(markdown, "leave_one_out")
    assert "(paper" not in row_line(lines, "amc_loo") and "(paper" not in row_line(lines, "amc_loo+fs")
