"""Table 5: a model with and without feature squeezing, and whether squeezing defends or only hides gradients.

The paper crafted its examples on the bare model and classified them through the squeezer. A squeezer such
as 1-bit depth reduction has a zero gradient almost everywhere, so an attacker who knows about it attacks
through it with BPDA (a straight-through gradient) instead. Every squeezed number therefore comes twice:
`<model>+fs`, crafted on the bare model (the paper's setting), and `<model>+fs_bpda`, crafted adaptively
through the squeezer. If `+fs` is low but `+fs_bpda` is high, the squeezer masks gradients; it is no defence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from amc_dist.attacks import AttackParams, build_attacks
from amc_dist.attacks.squeeze import SqueezedModel, Squeezer, build_squeezer
from amc_dist.config import SqueezeConfig
from amc_dist.evaluation.robustness import AttackFn, Labels, error_of, stronger, transfer_wrong

TABLE5_ATTACKS = ("ead", "pgd")


def squeezer_for(squeeze: SqueezeConfig | nn.Module) -> nn.Module:
    """The config's squeezer (bit depth, then median window), or a squeezer module given as is."""
    if isinstance(squeeze, SqueezeConfig):
        return build_squeezer(squeeze.bit_depth, squeeze.median_window)
    return squeeze


def describe_squeezer(squeezer: nn.Module) -> str:
    return squeezer.describe() if isinstance(squeezer, Squeezer) else type(squeezer).__name__


def squeezed_wrong(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: Mapping[str, AttackFn],
    squeeze: SqueezeConfig | nn.Module,
    *,
    name: str = "model",
    labels: Labels = "predicted",
    on_result: Callable[[str, str, float], None] | None = None,
) -> dict[str, dict[str, torch.Tensor]]:
    """{row: {attack: per-image bool, True where misclassified}} for rows `name` (bare model, white-box),
    `name+fs` (the same examples through the squeezer) and `name+fs_bpda` (examples crafted through the
    squeezer with BPDA, then squeezed). Against the true labels; `on_result(row, attack, error)` is called
    as each number is known."""
    squeezer = squeezer_for(squeeze)
    squeezed = SqueezedModel(model, squeezer)
    bpda = SqueezedModel(model, squeezer, bpda=True)
    rows = {name: model, f"{name}+fs": squeezed}

    def relay(attack: str, errors: Mapping[str, float]) -> None:
        for row, error in errors.items():
            if on_result is not None:
                on_result(row, attack, error)

    crafted = transfer_wrong(rows, x, y, attacks, source=model, labels=labels, on_result=relay)
    adaptive = transfer_wrong(
        {f"{name}+fs_bpda": squeezed}, x, y, attacks, source=bpda, labels=labels, on_result=relay
    )
    return {**crafted, **adaptive}


def squeezed_errors(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: Mapping[str, AttackFn],
    squeeze: SqueezeConfig | nn.Module,
    *,
    name: str = "model",
    labels: Labels = "predicted",
    on_result: Callable[[str, str, float], None] | None = None,
) -> dict[str, dict[str, float]]:
    """{row: {attack: error}}, fractions of the rows of `squeezed_wrong` (same arguments)."""
    wrong = squeezed_wrong(model, x, y, attacks, squeeze, name=name, labels=labels, on_result=on_result)
    return {row: {attack: error_of(w) for attack, w in errors.items()} for row, errors in wrong.items()}


def table5_attacks(
    params: Mapping[str, AttackParams], attacks: Sequence[str] = TABLE5_ATTACKS
) -> dict[str, Any]:
    """Table 5's columns: each attack at its Table 1 parameters and at the paper's "stronger" ones."""
    normal = build_attacks({a: params[a] for a in attacks})
    strong = build_attacks({a: stronger(params[a]) for a in attacks})
    return {**normal, **{f"{a}_stronger": attack for a, attack in strong.items()}}


def squeezing_table(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    params: Mapping[str, AttackParams],
    squeeze: SqueezeConfig | nn.Module,
    *,
    name: str = "amc_target",
    attacks: Sequence[str] = TABLE5_ATTACKS,
    labels: Labels = "predicted",
    on_result: Callable[[str, str, float], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Table 5 for one model: rows `name`, `name+fs`, `name+fs_bpda`; columns ead, pgd, ead_stronger,
    pgd_stronger (white-box, `params` = config.attacks.whitebox, i.e. Table 1)."""
    missing = [a for a in attacks if a not in params]
    if missing:
        raise ValueError(f"squeezing_table: no Table 1 parameters for {missing}")
    return squeezed_errors(
        model, x, y, table5_attacks(params, attacks), squeeze, name=name, labels=labels, on_result=on_result
    )
