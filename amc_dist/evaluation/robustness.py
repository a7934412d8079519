"""Error rates under attack: white-box (Table 3), black-box transfer (Table 4), Table 5's "stronger" setting.

Every adversarial number in the evaluation goes through `transfer_errors`: craft each attack's examples once
on a source model, then score one or several target models on them against the TRUE labels. White-box is the
case source = target; black-box is source = the attacker's proxy P''; the paper's feature-squeezing numbers
are source = the bare model, target = the squeezed one. One loop, so the settings cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal, Protocol, runtime_checkable

import torch
from torch import nn

from amc_dist.attacks import AttackParams, attack_for
from amc_dist.evaluation.clean import predict
from amc_dist.tensors import batch_for, module_device, to_unit


class AttackFn(Protocol):
    """What an attack is to the evaluation: `attack(model, x_float01, y=None) -> adversarial batch`."""

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor: ...


@runtime_checkable
class StagedAttack(Protocol):
    """Attacks run one after another, each on the images the ones before left (`evaluation.suite`):
    `run` gives the examples and, per image, the index of the stage whose example it is (-1: none)."""

    stage_names: tuple[str, ...]

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple: ...


Labels = Literal["predicted", "true"]


EVAL_BLOCK = {"cpu": 2000, "gpu": 16384}  # images crafted at once: the attacks chunk them further


def transfer_wrong(
    targets: Mapping[str, nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: Mapping[str, AttackFn],
    *,
    source: nn.Module,
    labels: Labels = "predicted",
    block: int | None = None,
    on_result: Callable[[str, dict[str, float]], None] | None = None,
) -> dict[str, dict[str, torch.Tensor]]:
    """{target: {attack: per-image bool, True where the target misclassifies}} on examples crafted once per
    attack on `source`: what `transfer_errors` averages, kept per image for worst cases over attacks.

    Misclassified means against the true labels `y`, over all images of `x` (uint8 or [0, 1] float).
    `labels="predicted"` lets each attack aim at the source's own predictions (Cleverhans' y=None, what the
    paper's authors ran); `"true"` hands it `y` (the standard for a strong evaluation). Images go through
    in blocks of `block` (default by the source's device), so memory stays bounded whatever len(x);
    `on_result(attack, {target: error})` is called as each attack finishes, for progress events. A
    `StagedAttack` gives one column per stage: the images misclassified once the stages up to it have run.
    """
    if len(x) == 0:
        raise ValueError("transfer_errors needs at least one image")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} images but y has {len(y)} labels")
    if labels not in ("predicted", "true"):
        raise ValueError(f"labels must be 'predicted' or 'true', got {labels!r}")
    device = module_device(source)
    block = block or batch_for(device, **EVAL_BLOCK)
    y = y.cpu().long()
    out: dict[str, dict[str, torch.Tensor]] = {name: {} for name in targets}
    for attack_name, attack in attacks.items():
        staged = isinstance(attack, StagedAttack)
        columns = attack.stage_names if staged else (attack_name,)
        wrong: dict[str, dict[str, list[torch.Tensor]]] = {c: {n: [] for n in targets} for c in columns}
        for i in range(0, len(x), block):
            xb = to_unit(x[i : i + block], device)
            yb = y[i : i + block]
            given = yb.to(device) if labels == "true" else None
            if staged:
                x_adv, stage, _ = attack.run(source, xb, given)
            else:
                x_adv, stage = attack(source, xb, given), torch.zeros(len(xb), dtype=torch.long)
            for name, target in targets.items():
                missed = predict(target, x_adv) != yb
                for index, column in enumerate(columns):  # a stage's column: the stages up to it
                    wrong[column][name].append(missed & (stage <= index))
        for column in columns:
            for name in targets:
                out[name][column] = torch.cat(wrong[column][name])
            if on_result is not None:
                on_result(column, {name: error_of(out[name][column]) for name in targets})
    return out


def error_of(wrong: torch.Tensor) -> float:
    """The error rate of a per-image misclassification mask, exactly (count / images)."""
    return int(wrong.sum()) / len(wrong)


def transfer_errors(
    targets: Mapping[str, nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: Mapping[str, AttackFn],
    *,
    source: nn.Module,
    labels: Labels = "predicted",
    block: int | None = None,
    on_result: Callable[[str, dict[str, float]], None] | None = None,
) -> dict[str, dict[str, float]]:
    """{target: {attack: error}} of each target on examples crafted once per attack on `source`: fractions
    in [0, 1] against the true labels `y`. Arguments as `transfer_wrong`."""
    wrong = transfer_wrong(
        targets, x, y, attacks, source=source, labels=labels, block=block, on_result=on_result
    )
    return {name: {a: error_of(w) for a, w in row.items()} for name, row in wrong.items()}


def attack_errors(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: Mapping[str, AttackFn],
    *,
    source: nn.Module | None = None,
    labels: Labels = "predicted",
    block: int | None = None,
    on_result: Callable[[str, float], None] | None = None,
) -> dict[str, float]:
    """{attack: error} of `model` on examples crafted on `source`: None = white-box (on `model` itself),
    a proxy P'' = black-box transfer (Table 4). Fractions vs the true labels; see `transfer_errors`."""
    relay = None if on_result is None else (lambda name, errors: on_result(name, errors["model"]))
    return transfer_errors(
        {"model": model},
        x,
        y,
        attacks,
        source=model if source is None else source,
        labels=labels,
        block=block,
        on_result=relay,
    )["model"]


# Table 5's "stronger" parameters: the paper doubled these and nothing else.
STRONGER_DOUBLED = {"pgd": ("eps", "nb_iter"), "ead": ("binary_search_steps", "max_iterations")}


def stronger(params: AttackParams) -> AttackParams:
    """The paper's Table 5 "stronger" parameters: doubled nb_iter and eps for PGM, doubled binary_search_steps
    and max_iterations for EAP; every other parameter as given. Only PGM and EAP have a stronger setting in
    the paper."""
    name = attack_for(params).name
    if name not in STRONGER_DOUBLED:
        raise ValueError(f"the paper defines 'stronger' parameters only for PGM and EAP, not {name!r}")
    return params.model_copy(update={field: 2 * getattr(params, field) for field in STRONGER_DOUBLED[name]})
