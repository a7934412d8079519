"""Square Attack (Andriushchenko et al. 2020): a score-based random search, as AutoAttack runs it.

It needs no gradient, so a model that masks gradients still falls to it: the check that white-box numbers
are not an artefact of the loss surface. Per image it minimises the margin z_y - max_{j != y} z_j from a
start at the edge of the ball (Linf: vertical stripes of +-eps; L2 and L1: a grid of the same concentric
pattern with random signs), then each iteration proposes changing one square window and keeps the
proposal where the margin falls or the image is misclassified. The window's side follows p(i) * pixels
(p halves at iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 from p_init = 0.8: AutoAttack
does not rescale the schedule to the budget). Linf sets the window to +-eps per channel; L2 and L1
move the perturbation's mass out of a second window into the first, refilled with the concentric
pattern, at a norm that keeps the whole perturbation on the sphere (L1: then the exact projection onto
the ball and the box). The window is the same for all images of an iteration; signs are per image.

Budget: one query at the start and at most `n_queries` more per image; an image leaves as soon as it is
misclassified. All images run in one batch, since each iteration's cost is mostly fixed overhead.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import nn

from amc_dist.attacks.base import (
    Attack,
    AttackParamError,
    NormParams,
    RandomParams,
    norm_of,
    per_sample,
    project_box,
    random_like,
)

_P_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
_TINY = 1e-12


class SquareParams(NormParams, RandomParams):
    eps: float = Field(0.3, gt=0, description="radius of the ball the perturbation stays in (norm `ord`)")
    n_queries: int = Field(5000, ge=1, description="iterations after the initial query (AutoAttack's 5000)")
    p_init: float = Field(0.8, gt=0, le=1, description="share of the pixels in the first windows")


def window_share(p_init: float, iteration: int) -> float:
    """p at an iteration: p_init halved at each of AutoAttack's thresholds already passed."""
    return p_init / 2 ** sum(iteration > mark for mark in _P_HALVINGS)


def concentric(rows: int, cols: int, power: int, device: torch.device) -> torch.Tensor:
    """Rectangles around the centre (rows // 2, cols // 2), each adding 1 / (ring + 1)^power: an entry
    at Chebyshev distance r from the centre holds the sum over rings r..R-1."""
    i = (torch.arange(rows, device=device) - rows // 2).abs()
    j = (torch.arange(cols, device=device) - cols // 2).abs()
    ring = torch.maximum(i[:, None], j[None, :])
    rings = max(rows // 2 + 1, cols // 2 + 1)
    weights = 1.0 / torch.arange(1, rings + 1, device=device, dtype=torch.float32) ** power
    tails = weights.flip(0).cumsum(0).flip(0)  # tails[r] = sum of weights[r:]
    return tails[ring]


class Square(Attack):
    name = "square"
    Params = SquareParams

    def _noise(self, x: torch.Tensor, generator: torch.Generator | None) -> None:
        """The search draws its random numbers as it goes (how many depends on when images leave): the
        generator is kept for `_generate`, which runs the whole batch at once."""
        self._generator = generator

    def _generate(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, noise: torch.Tensor | None
    ) -> torch.Tensor:
        if x.dim() != 4:
            raise AttackParamError(f"square: x must be images (N x C x H x W), got shape {tuple(x.shape)}")
        generator, self._generator = self._generator, None
        return self._search(model, x, y, generator)

    def _pattern(self, s: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
        """An s x s window pattern: the concentric pattern on the top half, its negative on the bottom,
        normalised in the attack's norm, transposed at random."""
        power = 2 if self.params.ord == 2 else 4
        top = concentric(s // 2, s, power, device)
        bottom = -concentric(s - s // 2, s, power, device)
        pattern = torch.cat([top, bottom])
        pattern = pattern / norm_of(pattern[None], self.params.ord)
        if random_like(pattern, generator, normal=False, shape=(1,)).item() > 0.5:
            pattern = pattern.t()
        return pattern

    def _signs(
        self, x: torch.Tensor, generator: torch.Generator | None, shape: tuple[int, ...]
    ) -> torch.Tensor:
        return (random_like(x, generator, normal=False, shape=shape) > 0.5).to(x.dtype) * 2 - 1

    def _margin(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            logits = model(x)
        true = logits.gather(1, y[:, None]).squeeze(1)
        return true - logits.scatter(1, y[:, None], -math.inf).amax(1)

    def _start(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        p = self.params
        n, c, h, w = x.shape
        if math.isinf(p.ord):
            return self._clip(x + p.eps * self._signs(x, generator, (n, c, 1, w)))
        delta = torch.zeros_like(x)
        s = max(h // 5, 1)
        first = (h - 5 * s) // 2
        for top in range(first, first + (h // s) * s, s):
            for left in range(first, first + (w // s) * s, s):
                if top + s > h or left + s > w:
                    continue
                tile = self._pattern(s, generator, x.device).to(x.dtype)
                delta[:, :, top : top + s, left : left + s] += tile * self._signs(x, generator, (n, c, 1, 1))
        return self._on_sphere(x, delta)

    def _on_sphere(self, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """x + delta scaled to norm eps, inside the box (L1: the exact projection, a hair inside eps)."""
        p = self.params
        if p.ord == 1:
            return project_box(x, x + delta, p.eps * (1 - 1e-6), 1.0, p.clip_min, p.clip_max)
        norms = norm_of(delta, 2.0).clamp_min(_TINY)
        return self._clip(x + delta * per_sample(p.eps / norms, x))

    def _window_side(self, iteration: int, c: int, h: int, w: int) -> int:
        share = window_share(self.params.p_init, iteration)
        side = round(math.sqrt(share * h * w))
        if math.isinf(self.params.ord):
            side = max(side, 1)
        else:
            side = max(side, 3)
            side += 1 - side % 2  # odd sides, as AutoAttack's L2 and L1 versions use
        return min(side, h, w)

    def _search(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator | None
    ) -> torch.Tensor:
        p = self.params
        n, c, h, w = x.shape
        if y is None:
            with torch.no_grad():
                y = model(x).argmax(1)
        best = self._start(x, generator)
        margin = self._margin(model, best, y)
        out = torch.where(per_sample(margin <= 0, x), best, x)
        index = torch.arange(n, device=x.device)
        keep = margin > 0
        index, xs, ys, best, margin = index[keep], x[keep], y[keep], best[keep], margin[keep]
        for iteration in range(p.n_queries):
            if not len(index):
                break
            side = self._window_side(iteration, c, h, w)
            proposal = self._propose(xs, best, side, generator)
            new_margin = self._margin(model, proposal, ys)
            better = new_margin < margin  # the margin loss: misclassified (<= 0) is better too
            best = torch.where(per_sample(better, best), proposal, best)
            margin = torch.where(better, new_margin, margin)
            done = margin <= 0
            if done.any():
                out[index[done]] = best[done]
                keep = ~done
                index, xs, ys, best, margin = index[keep], xs[keep], ys[keep], best[keep], margin[keep]
        out[index] = best
        return out

    def _corner(self, limit: int, generator: torch.Generator | None, like: torch.Tensor) -> int:
        return int(random_like(like, generator, normal=False, shape=(1,)).item() * limit)

    def _propose(
        self, x: torch.Tensor, best: torch.Tensor, s: int, generator: torch.Generator | None
    ) -> torch.Tensor:
        p = self.params
        n, c, h, w = x.shape
        top, left = self._corner(h - s, generator, x), self._corner(w - s, generator, x)
        window = (slice(None), slice(None), slice(top, top + s), slice(left, left + s))
        if math.isinf(p.ord):
            proposal = best.clone()
            proposal[window] = best[window] + 2 * p.eps * self._signs(x, generator, (n, c, 1, 1))
            return project_box(x, proposal, p.eps, p.ord, p.clip_min, p.clip_max)
        top2, left2 = self._corner(h - s, generator, x), self._corner(w - s, generator, x)
        second = (slice(None), slice(None), slice(top2, top2 + s), slice(left2, left2 + s))
        delta = best - x
        ord = p.ord

        def spatial(t: torch.Tensor) -> torch.Tensor:
            return torch.linalg.vector_norm(t, ord=ord, dim=(-2, -1), keepdim=True)

        own = spatial(delta[window])
        both = torch.zeros_like(delta)
        both[window] = delta[window]
        both[second] = delta[second]
        freed = spatial(both)  # per channel: the mass of the two windows, reassigned to the first
        whole = per_sample(norm_of(delta, ord), x)
        pattern = self._pattern(s, generator, x.device).to(x.dtype)
        fresh = pattern * self._signs(x, generator, (n, c, 1, 1)) + delta[window] / (own + _TINY)
        if ord == 2:
            target = ((p.eps**2 - whole**2).clamp_min(0) / c + freed**2).sqrt()
        else:
            target = ((p.eps - whole).clamp_min(0) / c + freed) * c
        fresh = fresh / (spatial(fresh) + _TINY) * target
        delta = delta.clone()
        delta[second] = 0
        delta[window] = fresh
        return self._on_sphere(x, delta)
