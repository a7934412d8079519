"""MSD, multi steepest descent (Maini, Wong and Kolter 2020): one gradient per iteration; from it a
steepest-ascent step for each norm, each projected onto its own ball and the input box; the candidate
with the highest loss becomes the next iterate (one forward pass per norm, charged by the cost meter).
Each sample's highest-loss iterate over the whole run is returned, as for every training attack.

The norms, their budgets and step sizes come from the row's PGD instances (`eps`, `eps_iter`, `ord`);
the run has as many iterations as the longest of them (`nb_iter`). Like Maini et al.'s, it starts from
the clean input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from amc_dist.attacks import Attack
from amc_dist.attacks.base import (
    eval_mode,
    keep_higher,
    objective,
    objective_gradient,
    project_box,
    steepest_direction,
)
from amc_dist.attacks.pgd import PGD
from amc_dist.training.strategies.strategy import Parts, Strategy


def msd_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, point: torch.Tensor, grad: torch.Tensor, norms: list
) -> tuple[torch.Tensor, torch.Tensor]:
    """The highest-loss of the per-norm candidates from `point` along `grad`, and its loss."""
    best = best_loss = None
    for p in norms:
        step = point + p.eps_iter * steepest_direction(grad, p.ord)
        candidate = project_box(x, step, p.eps, p.ord, p.clip_min, p.clip_max)
        best, best_loss = keep_higher(best, best_loss, candidate, objective(model, candidate, y, False))
    return best, best_loss


def msd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, norms: list, iterations: int) -> torch.Tensor:
    """MSD's examples for `x` with true labels `y` under the PGD parameters `norms`."""
    with eval_mode(model), torch.enable_grad():
        point, best, best_loss = x, None, None
        for _ in range(iterations):
            grad, _, loss = objective_gradient(model, point, y, False)
            best, best_loss = keep_higher(best, best_loss, point, loss)
            point, loss = msd_step(model, x, y, point, grad, norms)
        best, _ = keep_higher(best, best_loss, point, loss)
    return best.detach()


class MSD(Strategy):
    name = "msd"

    def __init__(
        self, attacks: Mapping[str, Attack], *, ramp_epochs: int = 0, ramp: Iterable[str] | None = None,
        seed: int = 0,
    ) -> None:  # fmt: skip
        not_pgd = [n for n, a in attacks.items() if not isinstance(a, PGD)]
        if not_pgd:
            raise ValueError(f"msd: takes its norms from PGD instances; {not_pgd} are not PGD")
        super().__init__(attacks, ramp_epochs=ramp_epochs, ramp=ramp, seed=seed)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Parts:
        norms = [a.params for a in self.attacks.values()]
        return [(msd(model, x, y, norms, max(p.nb_iter for p in norms)), y, 1.0)]
