"""EAD, the elastic-net attack (Chen et al. 2018; the paper's "EAP"), solved with FISTA.

Per sample and per binary-search step: minimise c * f(x) + ||x - x0||_2^2 + beta * ||x - x0||_1 from
x = y = x0, where f is the Carlini-Wagner hinge on logits. Each iteration takes a gradient step on the
smooth part at the momentum point y (learning rate decayed as (1 - k/K)^0.5), shrinks towards x0 with
threshold beta and projects to the box (ISTA), then moves y with FISTA momentum k/(k+3). Success is
decided at the iterate x_k; the best success under the EN or L1 rule is kept over all steps. The constant
c is per sample: x10 until a first success, then bisection. Failed samples come back unchanged.

Speed comes from treating every sample independently: a fixed-size pool of samples runs together, each
with its own iteration counter, binary-search step and early-abort state; a sample that finishes a step
restarts alone, and a sample that is done leaves the pool and a waiting sample takes its place, so the
batch stays at its most efficient size and no time goes to samples that have stopped. Every step starts
at x0, where the gradient of c * f is c times the gradient of f: that gradient and the logits at x0 are
computed once per sample, so a step's first iteration, and a step whose constant is too small to move
the image at all, cost no pass through the model.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

from amc_dist.attacks.base import Attack, AttackParams, chunks, per_sample

_NO_BOUND = 1e10  # Cleverhans' upper bound before any success; a bound below _KNOWN comes from a success
_KNOWN = 1e9
# The pool holds this many chunks: its bookkeeping runs on large tensors at once, and samples finishing at
# different times leave the model calls near the chunk size for longer before the pool drains.
_POOL_CHUNKS = 4


class EADParams(AttackParams):
    # Defaults: what the paper's authors ran on SVHN/CIFAR-10 (MNIST: binary_search_steps=4,
    # max_iterations=8, initial_const=1e-3); abort_early=False was Cleverhans' default, which they kept.
    beta: float = Field(1e-2, ge=0, description="weight of the L1 term (the ISTA shrinkage threshold)")
    binary_search_steps: int = Field(1, ge=1, description="searches over the constant c, per sample")
    max_iterations: int = Field(5, ge=1, description="FISTA iterations per binary-search step")
    initial_const: float = Field(0.1, gt=0, description="the constant c of the first binary-search step")
    learning_rate: float = Field(0.1, gt=0, description="initial step size, decayed as (1 - k/K)^0.5")
    abort_early: bool = Field(
        False, description="stop a sample's step when its objective stalls (checked every K/10 iterations)"
    )
    decision_rule: Literal["EN", "L1"] = Field(
        "EN", description="which distance picks the best success: elastic net or L1"
    )
    confidence: float = Field(
        0.0, ge=0, description="logit margin a success must have (Carlini-Wagner kappa)"
    )
    targeted: bool = Field(False, description="move towards the given labels instead of away from them")

    @field_validator("decision_rule", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


@dataclasses.dataclass
class _Pool:
    """The samples being optimised, one row each; every field has the pool's length first."""

    index: torch.Tensor  # position in the caller's batch
    x0: torch.Tensor
    label: torch.Tensor
    grad0: torch.Tensor  # gradient of f at x0
    logits0: torch.Tensor  # logits at x0
    x: torch.Tensor  # the ISTA iterate x_k
    y: torch.Tensor  # the FISTA momentum point y_k
    k: torch.Tensor  # iteration within the current binary-search step
    step: torch.Tensor  # binary-search step
    const: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor
    prev_loss: torch.Tensor  # objective at the last early-abort check
    found: torch.Tensor  # succeeded during the current binary-search step

    def select(self, keep: torch.Tensor) -> _Pool:
        return _Pool(*(getattr(self, f.name)[keep] for f in dataclasses.fields(self)))

    def extend(self, other: _Pool) -> _Pool:
        return _Pool(
            *(torch.cat([getattr(self, f.name), getattr(other, f.name)]) for f in dataclasses.fields(self))
        )


class EAD(Attack):
    name = "ead"
    Params = EADParams

    def _generate(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, noise: torch.Tensor | None
    ) -> torch.Tensor:
        size = self.chunk_size(x)
        capacity = _POOL_CHUNKS * size
        start = self._at_start(model, x, y, size)
        best = x.clone()
        best_dist = torch.full((len(x),), math.inf, dtype=x.dtype, device=x.device)
        admitted = min(capacity, len(x))
        pool = self._admit(x, start, 0, admitted)
        while len(pool.index):
            pool = self._iterate(model, pool, best, best_dist, size)
            if len(pool.index) <= capacity - size and admitted < len(x):  # room for a whole chunk
                begin, admitted = admitted, min(admitted + capacity - len(pool.index), len(x))
                pool = pool.extend(self._admit(x, start, begin, admitted))
        return best

    def _at_start(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, size: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The gradient of f, the logits and the labels (the model's predictions when y is None) at x, in
        one forward+backward pass per chunk."""
        parts = [
            self._hinge_gradient(model, x[part], None if y is None else y[part])
            for part in chunks(len(x), size)
        ]
        return tuple(torch.cat(tensors) for tensors in zip(*parts, strict=True))

    def _admit(
        self, x: torch.Tensor, start: tuple[torch.Tensor, torch.Tensor, torch.Tensor], begin: int, end: int
    ) -> _Pool:
        n, x0 = end - begin, x[begin:end]
        grad0, logits0, labels = (tensor[begin:end] for tensor in start)
        scalar = dict(dtype=x.dtype, device=x.device)
        return _Pool(
            index=torch.arange(begin, end, device=x.device),
            x0=x0,
            label=labels,
            grad0=grad0,
            logits0=logits0,
            x=x0,
            y=x0,
            k=torch.zeros(n, dtype=torch.int64, device=x.device),
            step=torch.zeros(n, dtype=torch.int64, device=x.device),
            const=torch.full((n,), self.params.initial_const, **scalar),
            lower=torch.zeros(n, **scalar),
            upper=torch.full((n,), _NO_BOUND, **scalar),
            prev_loss=torch.full((n,), math.inf, **scalar),
            found=torch.zeros(n, dtype=torch.bool, device=x.device),
        )

    def _hinge(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """The C&W loss f: how far the label's logit is from losing (or the target's from winning)."""
        is_label = F.one_hot(label, logits.shape[1]).bool()
        real = logits.gather(1, label[:, None]).squeeze(1)
        other = logits.masked_fill(is_label, -math.inf).amax(1)
        margin = other - real if self.params.targeted else real - other
        return (margin + self.params.confidence).clamp_min(0)

    def _succeeded(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        shift = -self.params.confidence if self.params.targeted else self.params.confidence
        predicted = logits.scatter_add(1, label[:, None], torch.full_like(logits[:, :1], shift)).argmax(1)
        return predicted == label if self.params.targeted else predicted != label

    def _iterate(
        self, model: nn.Module, pool: _Pool, best: torch.Tensor, best_dist: torch.Tensor, size: int
    ) -> _Pool:
        """One FISTA iteration for every sample in the pool, through the model in chunks of `size`; returns
        the pool without finished samples."""
        p = self.params
        k = pool.k.to(pool.x.dtype)
        grad = per_sample(pool.const, pool.x0) * pool.grad0  # right where a step starts: y = x0
        inside = pool.k > 0
        if inside.any():
            rows = _where(inside)
            grad[rows] = self._gradient(model, pool.y[rows], pool.const[rows], pool.label[rows], size)
        with torch.no_grad():
            lr = p.learning_rate * (1 - k / p.max_iterations).sqrt()
            grad += 2 * (pool.y - pool.x0)
            x_new = self._shrink(pool.y - per_sample(lr, pool.y) * grad, pool.x0)
            at_x0 = (x_new == pool.x0).flatten(1).all(1)
            delta = (x_new - pool.x0).flatten(1)
            l1 = delta.abs().sum(1)
            elastic = delta.square().sum(1) + p.beta * l1
            dist = elastic if p.decision_rule == "EN" else l1
            check = pool.k % max(p.max_iterations // 10, 1) == 0 if p.abort_early else torch.zeros_like(at_x0)
            # The logits at x_k+1 decide three things: a new best (only possible below the best distance),
            # the binary search's success flag (already settled once set in this step) and early abort (on
            # check iterations). Where none is open, the forward pass is skipped: the results are the same.
            needed = ~pool.found | (dist < best_dist[pool.index]) | check
            logits = pool.logits0.clone()
            evaluate = needed & ~at_x0  # at x0 the logits are known
            if evaluate.any():
                rows = _where(evaluate)
                moved = x_new[rows]
                logits[rows] = torch.cat([model(moved[part]) for part in chunks(len(moved), size)])
            # A sample that sits at x0 (x_k = y_k = x_k+1 = x0) stays there for the rest of this step: the
            # gradient is the same at the same point and the decaying learning rate only shrinks the step
            # that the threshold already absorbed. Ending the step now changes no result; it saves most
            # of the iterations at constants too small to move the image (the start of the search).
            stuck = at_x0 & ((pool.x == pool.x0) & (pool.y == pool.x0)).flatten(1).all(1)
            pool.y = x_new + per_sample(k / (k + 3), x_new) * (x_new - pool.x)
            pool.x = x_new
            success = self._succeeded(logits, pool.label) & needed
            improved = success & (dist < best_dist[pool.index])
            best_dist[pool.index[improved]] = dist[improved]
            best[pool.index[improved]] = x_new[improved]
            pool.found |= success

            step_over = stuck | (pool.k + 1 >= p.max_iterations)
            if p.abort_early:
                loss = pool.const * self._hinge(logits, pool.label) + elastic
                step_over |= check & (loss > 0.9999 * pool.prev_loss)
                pool.prev_loss = torch.where(check, loss, pool.prev_loss)
            pool.k += 1
            if not step_over.any():
                return pool
            self._next_step(pool, step_over)
            done = pool.step >= p.binary_search_steps
            return pool.select(~done) if done.any() else pool

    def _gradient(
        self, model: nn.Module, y: torch.Tensor, const: torch.Tensor, label: torch.Tensor, size: int
    ) -> torch.Tensor:
        """The gradient of const * f at y, chunk by chunk."""
        parts = chunks(len(y), size)
        return torch.cat(
            [self._hinge_gradient(model, y[part], label[part], const[part])[0] for part in parts]
        )

    def _hinge_gradient(
        self,
        model: nn.Module,
        point: torch.Tensor,
        label: torch.Tensor | None,
        const: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The gradient of f (times const) at one chunk of points, the logits there and the labels (the
        model's predictions there when label is None)."""
        point = point.detach().requires_grad_(True)
        logits = model(point)
        label = logits.detach().argmax(1) if label is None else label
        loss = self._hinge(logits, label)
        (grad,) = torch.autograd.grad((loss if const is None else const * loss).sum(), point)
        return grad, logits.detach(), label

    def _shrink(self, z: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """ISTA's soft threshold of z - x0 at beta, projected onto [clip_min, clip_max]."""
        p = self.params
        diff = z - x0
        up = (z - p.beta).clamp_max(p.clip_max)
        down = (z + p.beta).clamp_min(p.clip_min)
        return torch.where(diff > p.beta, up, torch.where(diff < -p.beta, down, x0))

    def _next_step(self, pool: _Pool, over: torch.Tensor) -> None:
        """Binary search on c for the samples whose step is over, then reset their optimiser state."""
        p = self.params
        found = over & pool.found
        failed = over & ~pool.found
        pool.upper = torch.where(found, torch.minimum(pool.upper, pool.const), pool.upper)
        pool.lower = torch.where(failed, torch.maximum(pool.lower, pool.const), pool.lower)
        bisect = (pool.lower + pool.upper) / 2
        searched = torch.where(pool.upper < _KNOWN, bisect, torch.where(found, pool.const, pool.const * 10))
        pool.const = torch.where(over, searched, pool.const)
        pool.step = pool.step + over.long()
        if p.binary_search_steps >= 10:  # Cleverhans and Chen et al. repeat the search at the upper bound
            last = over & (pool.step == p.binary_search_steps - 1)
            pool.const = torch.where(last, pool.upper, pool.const)
        keep = per_sample(~over, pool.x)
        pool.x = torch.where(keep, pool.x, pool.x0)
        pool.y = torch.where(keep, pool.y, pool.x0)
        pool.k = torch.where(over, 0, pool.k)
        pool.prev_loss = torch.where(over, math.inf, pool.prev_loss)
        pool.found = pool.found & ~over


def _where(mask: torch.Tensor) -> torch.Tensor | slice:
    """The rows a mask selects, as a slice when it selects all of them (no copy)."""
    return slice(None) if mask.all() else mask.nonzero().squeeze(1)
