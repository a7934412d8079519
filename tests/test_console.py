"""The console lines of a run or an evaluation: each says what it measured, and prints user text as is."""

import io

from rich.console import Console

from amc_dist.console import ProgressSink, eval_line
from amc_dist.events import event


def strong(attack, row, value, setting=None):
    return event(
        "eval", "evaluate", 0, setting=setting or attack, attack=attack, error_rate=value, n=200, model="m.4"
    ) | {"row": row}


def test_each_strong_attack_line_names_its_row():
    """The same attack on the bare model, through the squeezer and through BPDA: three lines that differ
    in more than the figure (they read `strong_pgd strong_pgd error 99.50%` three times before)."""
    lines = [eval_line(strong("strong_pgd", row, v)) for row, v in (("m.4", 0.995), ("m.4+fs", 0.375))]
    lines.append(eval_line(strong("apgd_ce", "m.4+fs_bpda", 0.385, setting="apgd")))
    assert lines == [
        "evaluate: strong_pgd on m.4 (the bare model) error 99.50% (n=200)",
        "evaluate: strong_pgd on m.4+fs (through the squeezer) error 37.50% (n=200)",
        "evaluate: apgd apgd_ce on m.4+fs_bpda (through the squeezer, by BPDA) error 38.50% (n=200)",
    ]


def test_lines_without_a_row_are_unchanged():
    clean = event("eval", "target", 0, setting="clean", attack=None, error_rate=0.02, n=100, epoch=3)
    assert eval_line(clean) == "target epoch 3: clean error 2.00% (n=100)"
    fgsm = event("eval", "target", 0, setting="whitebox", attack="fgsm", error_rate=0.5, n=100)
    assert eval_line(fgsm) == "target: whitebox fgsm error 50.00% (n=100)"


def test_the_sink_prints_bracketed_names_as_they_are():
    out = io.StringIO()
    with ProgressSink(Console(file=out, width=200)) as sink:
        sink(strong("strong_pgd", "[m]", 0.5) | {"model": "[m]"})
    assert "strong_pgd on [m] (the bare model) error 50.00%" in out.getvalue()
