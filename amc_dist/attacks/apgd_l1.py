"""L1-APGD, "Mind the box" (Croce & Hein 2021): APGD under an L1 budget inside the [0, 1] box.

Plain L1 steepest ascent moves one pixel per step and the box cuts most of such moves short, so the
L1 version has its own iteration (what `APGD` runs for `ord=1`), per sample:
- the step is eta * sign(g_S) / |S|, where S holds the fraction `k` of the entries with the largest
  gradient magnitude, then the exact projection onto the eps-ball intersected with the box
  (`base.project_box`); no momentum;
- eta starts at eps; every 4% of the iterations (at least one) the sparsity of the best point so far is
  measured: where it fell by more than 5% since the last check, eta returns to eps and the iterate to
  the best point, else eta shrinks by 1.5 (never below eps / 10); k becomes that sparsity / 1.5;
- with `l1_phases`, the run is three phases of 30%, 30% and 40% of the iterations at 3 eps, 2 eps and
  eps, each starting from the highest-loss point of the one before, projected onto its smaller ball;
  only the eps phase may count a success. The first phase starts from a standard normal draw projected
  onto its ball (k = 0.2 without phases, else the start's sparsity / 1.5).
A sample misclassified at an iterate of the counting phase is done: that point is its result.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from amc_dist.attacks.base import per_sample

if TYPE_CHECKING:
    from amc_dist.attacks.apgd import APGD

_SPARSITY_DROP = 0.95  # a check that finds the sparsity below 95% of the last resets the step
_STEP_SHRINK = 1.5
_MIN_STEP = 10.0  # eta never falls below eps / 10


def phases(eps: float, n_iter: int, use_phases: bool) -> list[tuple[float, int]]:
    """[(eps, iterations)] of the run: 3/2/1 eps over 30/30/40% of n_iter, or one phase at eps."""
    if not use_phases:
        return [(eps, n_iter)]
    first = math.ceil(0.3 * n_iter)
    return [(3 * eps, first), (2 * eps, first), (eps, n_iter - 2 * first)]


def l1_run(
    attack: APGD,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    start: torch.Tensor,
    target: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One L1-APGD run from x + start: per sample the result (the fooling point, else the highest-loss
    point), its loss and whether it fools the model within eps."""
    p = attack.params
    schedule = phases(p.eps, p.n_iter, p.l1_phases)
    point = x + start
    for number, (eps, steps) in enumerate(schedule):
        point = attack._project(x, point, eps)
        counts = number == len(schedule) - 1 and p.early_stop
        point, loss, fooled = _phase(attack, model, x, y, target, point, eps, steps, p.l1_phases, counts)
    return point, loss, fooled


def _sparsity(delta: torch.Tensor) -> torch.Tensor:
    return (delta != 0).flatten(1).sum(1).to(delta.dtype)


def _phase(
    attack: APGD,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor | None,
    point: torch.Tensor,
    eps: float,
    steps: int,
    warm: bool,
    counts: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`steps` iterations at budget eps from `point` (inside the ball and box). Returns per sample the
    fooling point where `counts` and one was found, else the highest-loss point; its loss; fooled."""
    n, features = len(x), x[0].numel()
    result, result_loss = point.clone(), torch.empty(n, dtype=x.dtype, device=x.device)
    fooled = torch.zeros(n, dtype=torch.bool, device=x.device)
    loss, grad, predicted = attack._loss_and_gradient(model, point, y, target)
    index = torch.arange(n, device=x.device)
    best, best_loss, best_grad = point, loss, grad
    if warm:
        sparsity_old = _sparsity(point - x)
        share = sparsity_old / features / _STEP_SHRINK
    else:
        sparsity_old = torch.full((n,), float(features), dtype=x.dtype, device=x.device)
        share = torch.full((n,), 0.2, dtype=x.dtype, device=x.device)
    eta = torch.full((n,), eps, dtype=x.dtype, device=x.device)
    every = max(int(0.04 * steps), 1)
    for k in range(steps + 1):
        if counts:  # a fooling point ends the sample's run
            done = predicted != y
            result[index[done]], result_loss[index[done]] = point[done], loss[done]
            fooled[index[done]] = True
            if done.any():
                keep = ~done
                index, x, y, point, loss, grad, predicted = (
                    t[keep] for t in (index, x, y, point, loss, grad, predicted)
                )
                best, best_loss, best_grad = best[keep], best_loss[keep], best_grad[keep]
                sparsity_old, share, eta = sparsity_old[keep], share[keep], eta[keep]
                target = None if target is None else target[keep]
                if not len(index):
                    return result, result_loss, fooled
        if k == steps:
            break
        if k and k % every == 0:  # after the fooling check: a reset point's prediction is not known
            sparsity = _sparsity(best - x)
            reset = sparsity / sparsity_old < _SPARSITY_DROP
            share = sparsity / features / _STEP_SHRINK
            eta = torch.where(reset, eps, eta / _STEP_SHRINK).clamp(eps / _MIN_STEP, eps)
            sparsity_old = sparsity
            point = torch.where(per_sample(reset, point), best, point)
            grad = torch.where(per_sample(reset, grad), best_grad, grad)
        with torch.no_grad():
            magnitude = grad.abs().flatten(1)
            rank = ((1 - share) * features).clamp(0, features - 1).long()
            threshold = magnitude.sort(1).values.gather(1, rank[:, None])
            direction = (grad.flatten(1).sign() * (magnitude >= threshold)).view_as(grad)
            size = direction.abs().flatten(1).sum(1) + 1e-10
            point = attack._project(x, point + per_sample(eta / size, point) * direction, eps)
        loss, grad, predicted = attack._loss_and_gradient(model, point, y, target)
        improved = loss > best_loss
        best_loss = torch.where(improved, loss, best_loss)
        best = torch.where(per_sample(improved, point), point, best)
        best_grad = torch.where(per_sample(improved, grad), grad, best_grad)
    result[index], result_loss[index] = best, best_loss
    return result, result_loss, fooled
