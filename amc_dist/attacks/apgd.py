"""APGD, Auto-PGD (Croce & Hein 2020, Algorithm 1): PGD whose step size needs no tuning.

The attack behind AutoAttack, for a robustness number that does not hinge on a hand-picked step size
(the paper's PGM uses 0.01 steps that cannot cross an eps 0.3 ball). Per sample, from a random start
x0 in the eps-ball (Linf: uniform noise rescaled so its largest entry is eps; L2: a point on the
sphere of radius eps, as the authors' code draws them):

- x1 = P(x0 + eta * s(grad f(x0))), then for k >= 1 a step with momentum alpha = 0.75:
  z = P(x_k + eta * s(grad f(x_k))), x_k+1 = P(x_k + alpha (z - x_k) + (1 - alpha)(x_k - x_k-1)),
  where P projects onto the eps-ball and the box and s is sign(.) for Linf, ./||.||_2 for L2;
- eta starts at 2 eps. At the checkpoints w_j = ceil(p_j n_iter) (p_0 = 0, p_1 = 0.22,
  p_j+1 = p_j + max(p_j - p_j-1 - 0.03, 0.06)) eta halves and the iterate returns to the best point so
  far when (1) fewer than rho = 0.75 of the steps since the last checkpoint raised the loss, or (2) eta
  was not halved at the last checkpoint and the best loss has not improved since (from the second
  checkpoint on, as the authors' code does).

The loss f is the cross-entropy ("ce") or the difference of logits ratio ("dlr",
-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3), invariant to shifting and scaling the logits, 3+ classes).
A sample that is misclassified at any iterate is done: that point is its result (`early_stop`; without
it, for training, every sample runs to the end and gets its highest-loss point). Restarts (from new
random starts) attack only the samples not fooled yet; a sample never fooled gets its highest-loss
point. Inputs the model already misclassifies come back unchanged; y=None attacks the model's own
predictions. Under L1 (`ord=1`) the iteration is "Mind the box" APGD's (attacks/apgd_l1.py); the
targeted version, APGD-T, is attacks/apgd_targeted.py.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from amc_dist.attacks.apgd_l1 import l1_run
from amc_dist.attacks.base import (
    Attack,
    AttackParamError,
    NormParams,
    RandomParams,
    l2_normalize,
    per_sample,
    project_box,
    random_like,
    steepest_direction,
)

_MOMENTUM = 0.75


class APGDParams(NormParams, RandomParams):
    # Defaults: the standard MNIST Linf budget (eps 0.3, the budget robust MNIST models are compared at)
    # and AutoAttack's 100 iterations.
    eps: float = Field(0.3, ge=0, description="radius of the ball the perturbation stays in (norm `ord`)")
    n_iter: int = Field(100, ge=1, description="iterations per restart")
    n_restarts: int = Field(1, ge=1, description="random restarts, each only for the samples not yet fooled")
    loss: Literal["ce", "dlr"] = Field(
        "ce", description="'ce' cross-entropy or 'dlr' difference of logits ratio (3+ classes)"
    )
    rho: float = Field(
        0.75, gt=0, le=1, description="share of steps since the last checkpoint that must raise the loss"
    )
    early_stop: bool = Field(
        True,
        description="a sample's first fooling point is its result (evaluation); False (training): every "
        "sample runs every iteration and restart and gets its highest-loss point",
    )
    l1_phases: bool = Field(
        True, description="L1 only: 30/30/40% of the iterations at 3 eps, 2 eps, eps, each from the last"
    )

    @model_validator(mode="after")
    def _phases_fit(self) -> APGDParams:
        if self.ord == 1 and self.l1_phases and self.n_iter < 3:
            raise ValueError(f"n_iter must be at least 3 for the three L1 phases, got {self.n_iter}")
        return self

    def headline(self) -> dict:
        """As every attack's, less `l1_phases` where the norm is not L1 (it changes nothing there)."""
        said = super().headline()
        if self.ord != 1:
            said.pop("l1_phases")
        return said


def checkpoints(n_iter: int) -> dict[int, int]:
    """{w_j: w_j - w_j-1}: the iterations (1 to n_iter) at which the step size may halve, each with the
    number of steps since the previous one (w_0 = 0)."""
    marks, previous, current = [0], 0, 22  # p_j in hundredths: ceil(p_j * n_iter) in exact integers
    while current <= 100:
        mark = -(-current * n_iter // 100)
        if mark > marks[-1]:
            marks.append(mark)
        previous, current = current, current + max(current - previous - 3, 6)
    return {b: b - a for a, b in itertools.pairwise(marks)}


def dlr_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample difference of logits ratio: -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12)."""
    ordered = logits.sort(dim=1, descending=True).values
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.scatter(1, y[:, None], -math.inf).amax(1)
    return -(true - other) / (ordered[:, 0] - ordered[:, 2] + 1e-12)


def targeted_dlr_loss(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample targeted DLR: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12) (4+ classes)."""
    ordered = logits.sort(dim=1, descending=True).values
    true = logits.gather(1, y[:, None]).squeeze(1)
    aimed = logits.gather(1, target[:, None]).squeeze(1)
    return -(true - aimed) / (ordered[:, 0] - (ordered[:, 2] + ordered[:, 3]) / 2 + 1e-12)


class APGD(Attack):
    name = "apgd"
    Params = APGDParams

    def _noise(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Random starts (N x restarts x ...), drawn restart by restart, so the first restart starts where a
        single run would: more restarts only add to what one run fools."""
        p = self.params
        shape = (p.n_restarts, *x.shape)
        if math.isinf(p.ord):
            t = 2 * random_like(x, generator, normal=False, shape=shape) - 1
            largest = t.flatten(2).abs().amax(2).clamp_min(torch.finfo(x.dtype).tiny)
            starts = p.eps * t / largest.view(*shape[:2], *([1] * (x.dim() - 1)))
        elif p.ord == 1:  # standard normal, projected onto the (first phase's) ball and box at the start
            starts = random_like(x, generator, normal=True, shape=shape)
        else:
            starts = p.eps * l2_normalize(random_like(x, generator, normal=True, shape=shape).flatten(0, 1))
        return starts.view(shape).transpose(0, 1)

    def _perturb(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, noise: torch.Tensor | None
    ) -> torch.Tensor:
        p = self.params
        with torch.no_grad():
            logits = model(x)
        if y is None:
            y = logits.argmax(1)
        if p.loss == "dlr" and logits.shape[1] < 3:
            raise AttackParamError(f"loss 'dlr' needs at least 3 classes, the model has {logits.shape[1]}")
        out = x.clone()
        best_loss = torch.full((len(x),), -math.inf, dtype=x.dtype, device=x.device)
        todo = logits.argmax(1) == y  # a misclassified input is already adversarial
        if not p.early_stop:  # training: the highest-loss point of every sample
            todo = torch.ones_like(todo)
        for target in self._targets(logits):
            for restart in range(p.n_restarts):
                rows = todo.nonzero().squeeze(1)
                if not len(rows):
                    return out
                aim = None if target is None else target[rows]
                adv, loss, fooled = self._single(model, x[rows], y[rows], noise[rows, restart], aim)
                better = (fooled & p.early_stop) | (loss > best_loss[rows])
                out[rows[better]] = adv[better]
                best_loss[rows] = torch.where(better, loss, best_loss[rows])
                todo[rows[fooled & p.early_stop]] = False
        return out

    def _targets(self, logits: torch.Tensor) -> list[torch.Tensor | None]:
        """The runs' target classes (per sample); [None] for the untargeted attack."""
        return [None]

    def _single(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        start: torch.Tensor,
        target: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One run from `start`: Algorithm 1 under Linf and L2, "Mind the box" APGD under L1."""
        if self.params.ord == 1:
            return l1_run(self, model, x, y, start, target)
        return self._run(model, x, y, start, target)

    def _loss_and_gradient(
        self,
        model: nn.Module,
        point: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
        gradient: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Per-sample loss (the targeted DLR towards `target` where one is given), its gradient w.r.t. the
        point alone (None if not wanted) and the predictions."""
        point = point.detach().requires_grad_(gradient)
        with torch.set_grad_enabled(gradient):
            logits = model(point)
            if target is not None:
                loss = targeted_dlr_loss(logits, y, target)
            elif self.params.loss == "ce":
                loss = F.cross_entropy(logits, y, reduction="none")
            else:
                loss = dlr_loss(logits, y)
        grad = torch.autograd.grad(loss.sum(), point)[0] if gradient else None
        return loss.detach(), grad, logits.detach().argmax(1)

    def _project(self, x: torch.Tensor, point: torch.Tensor, eps: float | None = None) -> torch.Tensor:
        p = self.params
        return project_box(x, point, p.eps if eps is None else eps, p.ord, p.clip_min, p.clip_max)

    def _run(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        start: torch.Tensor,
        target: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One run of Algorithm 1 from x + start: per sample the result (the fooling point, else the
        highest-loss point), its loss and whether it fools the model."""
        p = self.params
        n = len(x)
        result, result_loss = torch.empty_like(x), torch.empty(n, dtype=x.dtype, device=x.device)
        fooled = torch.zeros(n, dtype=torch.bool, device=x.device)
        since_last = checkpoints(p.n_iter)

        point = self._project(x, x + start)
        loss, grad, predicted = self._loss_and_gradient(model, point, y, target)
        s = _Run(
            index=torch.arange(n, device=x.device),
            x=x,
            y=y,
            target=target,
            point=point,
            previous=point,
            loss=loss,
            grad=grad,
            predicted=predicted,
            best=point,
            best_loss=loss,
            best_grad=grad,
            eta=torch.full((n,), 2 * p.eps, dtype=x.dtype, device=x.device),
            increases=torch.zeros(n, dtype=torch.int64, device=x.device),
            halved_last=torch.ones(n, dtype=torch.bool, device=x.device),  # condition 2 waits a checkpoint
            best_at_last=loss,
        )
        for k in range(p.n_iter):
            done = (s.predicted != s.y) & p.early_stop  # a fooling point ends the sample's run: its result
            result[s.index[done]], result_loss[s.index[done]] = s.point[done], s.loss[done]
            fooled[s.index[done]] = True
            if done.any():
                s = s.select(~done)
                if not len(s.index):
                    return result, result_loss, fooled
            with torch.no_grad():
                z = self._project(
                    s.x, s.point + per_sample(s.eta, s.point) * steepest_direction(s.grad, p.ord)
                )
                if k > 0:
                    z = s.point + _MOMENTUM * (z - s.point) + (1 - _MOMENTUM) * (s.point - s.previous)
                    z = self._project(s.x, z)
            last = k + 1 == p.n_iter  # no step follows: the loss is enough
            loss, grad, s.predicted = self._loss_and_gradient(model, z, s.y, s.target, gradient=not last)
            s.previous, s.point = s.point, z
            s.increases += loss > s.loss
            s.loss, s.grad = loss, grad
            improved = loss > s.best_loss
            s.best_loss = torch.where(improved, loss, s.best_loss)
            s.best = torch.where(per_sample(improved, z), z, s.best)
            if last:
                break
            s.best_grad = torch.where(per_sample(improved, grad), grad, s.best_grad)
            if k + 1 in since_last:
                self._checkpoint(s, since_last[k + 1])

        done = (s.predicted != s.y) & p.early_stop
        fooled[s.index[done]] = True
        result[s.index] = torch.where(per_sample(done, s.point), s.point, s.best)
        result_loss[s.index] = torch.where(done, s.loss, s.best_loss)
        return result, result_loss, fooled

    def _checkpoint(self, s: _Run, steps: int) -> None:
        """Halve eta and go back to the best point where too few of the last `steps` steps raised the loss
        (condition 1) or eta was kept last time and the best loss has not moved since (condition 2)."""
        halve = (s.increases < self.params.rho * steps) | (~s.halved_last & (s.best_loss <= s.best_at_last))
        s.eta = torch.where(halve, s.eta / 2, s.eta)
        s.point = torch.where(per_sample(halve, s.point), s.best, s.point)
        s.grad = torch.where(per_sample(halve, s.grad), s.best_grad, s.grad)
        s.loss = torch.where(halve, s.best_loss, s.loss)
        s.halved_last, s.best_at_last = halve, s.best_loss
        s.increases = torch.zeros_like(s.increases)


@dataclasses.dataclass
class _Run:
    """The samples still running, one row each: their index into the chunk and all per-sample state."""

    index: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    target: torch.Tensor | None  # APGD-T's target class
    point: torch.Tensor  # x_k
    previous: torch.Tensor  # x_k-1, for the momentum
    loss: torch.Tensor
    grad: torch.Tensor
    predicted: torch.Tensor
    best: torch.Tensor
    best_loss: torch.Tensor
    best_grad: torch.Tensor
    eta: torch.Tensor
    increases: torch.Tensor  # steps that raised the loss since the last checkpoint
    halved_last: torch.Tensor  # eta halved at the last checkpoint
    best_at_last: torch.Tensor  # the best loss at the last checkpoint

    def select(self, keep: torch.Tensor) -> _Run:
        return _Run(**{f.name: _rows(getattr(self, f.name), keep) for f in dataclasses.fields(self)})


def _rows(value: torch.Tensor | None, keep: torch.Tensor) -> torch.Tensor | None:
    return None if value is None else value[keep]
