"""What every attack shares: validated parameters, input checks, eval mode, chunking and the projections.

The guarantees every attack gives (the checklist of pitfalls that peer libraries got wrong) live here
once, so each attack file holds only its algorithm:
the model runs in eval mode during generation and gets every submodule's mode back afterwards; gradients
are taken w.r.t. the input only (`torch.autograd.grad`), so no parameter `.grad` is created or changed;
the caller's input is never written to; outputs are detached, of the input's shape, inside
[clip_min, clip_max], on the model's device (inputs are moved there); an input outside that box is an
error, never silently clipped.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from torch import nn

_CPU_CHUNK_BYTES = 1_200_000  # the default chunk on CPU: see AttackParams.batch_size


class AttackParamError(ValueError):
    """A bad attack parameter, label or input; the message names the parameter."""


class AttackParams(BaseModel):
    """Parameters every attack takes (Cleverhans names); subclasses add their own."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    clip_min: float = Field(0.0, description="lowest input value; inputs outside the box are an error")
    clip_max: float = Field(1.0, description="highest input value")
    # None: about 1.2 MB of input per chunk on CPU (382 MNIST images, 97 CIFAR-10 images) and 1024 samples
    # on a GPU, which wants large batches. On CPU, larger batches of LeNet activations run at 0.6x speed
    # when the allocator maps fresh pages for them, as in a new process; chunks this size are within a
    # few percent of the best whether or not it reuses freed pages (docs/benchmarks.md).
    batch_size: int | None = Field(
        None, ge=1, description="samples attacked per chunk; None = about 1.2 MB of input on CPU, 1024 on GPU"
    )

    @model_validator(mode="after")
    def _box_not_empty(self) -> AttackParams:
        if not self.clip_min < self.clip_max:
            raise ValueError(f"clip_min ({self.clip_min}) must be below clip_max ({self.clip_max})")
        return self

    def headline(self) -> dict[str, Any]:
        """The parameters that define the attack, as JSON values, for reports: the input box, chunking, seed
        and targeting (and training's keep_best, early_stop) only where they differ from their defaults."""
        routine = {"clip_min", "clip_max", "batch_size", "seed", "targeted", "keep_best", "early_stop"}
        fields = type(self).model_fields
        return {
            k: v
            for k, v in self.model_dump(mode="json").items()
            if k not in routine or getattr(self, k) != fields[k].default
        }

    def advice(self) -> list[str]:
        """Warnings for settings that are valid but likely not meant; given once, where the parameters are
        read (a config load, a `build_attack` call), not at every use."""
        return []


class RandomParams(AttackParams):
    """Parameters of attacks that draw random numbers: a seed makes every call repeat itself."""

    seed: int | None = Field(
        None, description="seed of the attack's random numbers; None = torch's global RNG"
    )


class NormParams(AttackParams):
    """Parameters of the attacks that run under a choice of norm: Linf (the default), L2 or L1."""

    ord: float = Field(
        math.inf, allow_inf_nan=True, description="the norm of the budget: inf (Linf), 2 (L2) or 1 (L1)"
    )

    @field_serializer("ord", when_used="json")
    def _ord_text(self, value: float) -> str | float:
        """'inf' in JSON and YAML, which have no portable infinity; read back by the validator below."""
        return "inf" if math.isinf(value) else value

    @field_validator("ord", mode="before")
    @classmethod
    def _known_norm(cls, value: Any) -> float:
        text = str(value).strip().lower()
        if text in ("inf", "np.inf", "infinity"):
            return math.inf
        if text in ("2", "2.0"):
            return 2.0
        if text in ("1", "1.0"):
            return 1.0
        raise ValueError(f"ord must be inf, 2 or 1, got {value!r}")


def _describe_errors(attack: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        name = ".".join(str(part) for part in err["loc"]) or "parameters"
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown parameter {name!r}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"parameter {name!r}: {msg} (got {err['input']!r})")
    return f"{attack}: " + "; ".join(lines)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for generation (BatchNorm statistics and dropout frozen), every submodule's mode restored."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _device_and_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """(device, floating dtype) of the model's parameters; the CPU's float32 for a model without any."""
    param = next(iter(model.parameters()), None)
    return (param.device, param.dtype) if param is not None else (torch.device("cpu"), torch.float32)


def check_input(x: torch.Tensor, clip_min: float, clip_max: float) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise AttackParamError(f"x must be a floating-point torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise AttackParamError(f"x must be a non-empty batch (N x ...), got shape {tuple(x.shape)}")
    low, high = x.aminmax()
    if not (low >= clip_min and high <= clip_max):  # also false for NaN
        raise AttackParamError(
            f"x has values in [{low.item():.6g}, {high.item():.6g}], outside "
            f"[clip_min={clip_min}, clip_max={clip_max}]: rescale the input or set clip_min/clip_max"
        )


def check_labels(x: torch.Tensor, y: torch.Tensor | None, required: bool) -> torch.Tensor | None:
    if y is None:
        if required:
            raise AttackParamError("y: a targeted attack needs the target labels")
        return None
    if not isinstance(y, torch.Tensor) or y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise AttackParamError("y must be an integer torch.Tensor of class indices")
    if y.shape != (x.shape[0],):
        raise AttackParamError(f"y must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    return y.to(device=x.device, dtype=torch.int64)


def predict_labels(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The model's own predictions, which the paper's authors attacked (Cleverhans' `y=None`)."""
    with torch.no_grad():
        return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def loss_gradient(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, targeted: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of the cross-entropy w.r.t. x alone; y=None takes the labels from this same forward pass."""
    grad, y, _ = objective_gradient(model, x, y, targeted)
    return grad, y


def objective_gradient(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, targeted: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(gradient, labels, per-sample objective) of the attack's objective w.r.t. x alone: the
    cross-entropy, negated when targeted. y=None takes the labels from this same forward pass.

    The objective is summed, not averaged, so each sample's gradient is independent of the chunk size.
    """
    x = x.detach().requires_grad_(True)
    logits = model(x)
    if y is None:
        y = logits.detach().argmax(1)
    losses = F.cross_entropy(logits, y, reduction="none")
    objective = -losses if targeted else losses
    (grad,) = torch.autograd.grad(objective.sum(), x)
    return grad, y, objective.detach()


def objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor, targeted: bool) -> torch.Tensor:
    """The per-sample objective of `objective_gradient` from a forward pass alone."""
    with torch.no_grad():
        losses = F.cross_entropy(model(x), y, reduction="none")
    return -losses if targeted else losses


def keep_higher(
    best: torch.Tensor | None, best_value: torch.Tensor | None, point: torch.Tensor, value: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample, the point with the higher objective (ties keep `best`); `best` None takes `point`."""
    if best is None or best_value is None:
        return point, value
    higher = value > best_value
    return torch.where(per_sample(higher, point), point, best), torch.where(higher, value, best_value)


def random_like(
    x: torch.Tensor, generator: torch.Generator | None, normal: bool, shape: tuple[int, ...] | None = None
) -> torch.Tensor:
    """Uniform [0, 1) or standard normal noise (x's shape by default), drawn on the generator's device."""
    device = generator.device if generator is not None else x.device
    draw = torch.randn if normal else torch.rand
    size = x.shape if shape is None else shape
    return draw(size, generator=generator, device=device, dtype=x.dtype).to(x.device)


def chunks(n: int, size: int) -> list[slice]:
    """Slices of 0..n of at most `size`, as equal as possible (300 by 256 -> 150 + 150, not 256 + 44), so
    every chunk stays near the efficient size."""
    count = math.ceil(n / size)
    bounds = [round(i * n / count) for i in range(count + 1)]
    return [slice(start, stop) for start, stop in itertools.pairwise(bounds)]


def per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample vector to broadcast against a batch shaped like `like`."""
    return values.view(-1, *([1] * (like.dim() - 1)))


def l2_norm(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).norm(dim=1)


def l2_normalize(d: torch.Tensor) -> torch.Tensor:
    """d / ||d||_2 per sample, guarded: a zero row stays zero, tiny rows do not underflow.

    Dividing by the largest magnitude first keeps the squares representable when the gradient is tiny,
    as happens in VAT with a small `xi`.
    """
    flat = d.flatten(1)
    tiny = torch.finfo(d.dtype).tiny
    flat = flat / flat.abs().amax(1, keepdim=True).clamp_min(tiny)
    return (flat / flat.norm(dim=1, keepdim=True).clamp_min(tiny)).view_as(d)


def norm_of(delta: torch.Tensor, ord: float) -> torch.Tensor:
    """Per-sample Lp norm of a batch of perturbations."""
    return torch.linalg.vector_norm(delta.flatten(1), ord=ord, dim=1)


def _check_ord(ord: float) -> None:
    if ord not in (math.inf, 2.0, 1.0):
        raise AttackParamError(f"ord must be inf, 2 or 1, got {ord!r}")


def steepest_direction(grad: torch.Tensor, ord: float) -> torch.Tensor:
    """The unit-norm direction of steepest ascent: sign(grad) for Linf, grad / ||grad||_2 for L2, and for
    L1 the signed unit vector of the largest gradient entry (shared equally by tied entries)."""
    _check_ord(ord)
    if math.isinf(ord):
        return grad.sign()
    if ord == 2:
        return l2_normalize(grad)
    flat = grad.flatten(1)
    top = flat.abs() == flat.abs().amax(1, keepdim=True)
    top &= flat != 0
    share = top.sum(1, keepdim=True).clamp_min(1)
    return (flat.sign() * top / share).view_as(grad)


def project(delta: torch.Tensor, eps: float, ord: float) -> torch.Tensor:
    """Project a perturbation onto the eps-ball of the given norm (no box: see `project_box`)."""
    _check_ord(ord)
    if math.isinf(ord):
        return delta.clamp(-eps, eps)
    if ord == 1:
        return _project_l1(delta, torch.full_like(delta.flatten(1), math.inf), eps)
    norms = l2_norm(delta)
    factor = torch.where(norms > eps, eps / norms.clamp_min(torch.finfo(delta.dtype).tiny), 1.0)
    return delta * per_sample(factor, delta)


def project_box(
    x: torch.Tensor, point: torch.Tensor, eps: float, ord: float, clip_min: float, clip_max: float
) -> torch.Tensor:
    """The point of the eps-ball around x, inside [clip_min, clip_max], for `point`.

    Linf and L1: the exact Euclidean projection onto the ball intersected with the box (L1 as the "Mind
    the box" attack needs it: clipping after an L1-ball projection wastes budget on pixels the box cuts).
    L2: the ball's projection, then the box (AutoAttack's order; the box only shrinks the norm)."""
    _check_ord(ord)
    if ord != 1:
        return (x + project(point - x, eps, ord)).clamp(clip_min, clip_max)
    delta = point - x
    room = torch.where(delta >= 0, clip_max - x, x - clip_min).flatten(1)
    return (x + _project_l1(delta, room, eps)).clamp(clip_min, clip_max)


def _project_l1(delta: torch.Tensor, room: torch.Tensor, eps: float) -> torch.Tensor:
    """argmin ||d - delta||_2 over ||d||_1 <= eps and |d_i| <= room_i (d_i of delta_i's sign).

    The solution is d_i = sign(delta_i) min(max(|delta_i| - lam, 0), room_i) with the smallest lam >= 0
    for which ||d||_1 <= eps. ||d(lam)||_1 is piecewise linear and decreasing in lam, with kinks where an
    entry starts to shrink (|delta_i| - room_i) and where it reaches zero (|delta_i|): the kinks are sorted
    and the segment that crosses eps is interpolated, per sample, in float64."""
    shape, dtype = delta.shape, delta.dtype
    v = delta.flatten(1).double()
    a = v.abs()
    room = room.double().clamp_min(0)
    d0 = torch.minimum(a, room)  # lam = 0
    total0 = d0.sum(1)
    inside = total0 <= eps
    if bool(inside.all()):
        return (v.sign() * d0).to(dtype).view(shape)
    starts = (a - room).clamp_min(0)
    kinks = torch.cat([starts, a], 1)
    change = torch.cat([torch.ones_like(a), -torch.ones_like(a)], 1)  # entries shrinking: +1 then -1
    kinks, order = kinks.sort(1)
    active = change.gather(1, order).cumsum(1)  # entries shrinking just after each kink
    gaps = kinks.diff(dim=1, append=kinks[:, -1:])
    # ||d||_1 at each kink: total0 minus the shrinkage accumulated over the segments before it
    drop = torch.cat([torch.zeros_like(total0[:, None]), (active * gaps).cumsum(1)[:, :-1]], 1)
    at_kink = total0[:, None] - drop
    # the last kink still at or above eps begins the segment where the L1 norm crosses eps
    last = (at_kink >= eps).sum(1).clamp_min(1) - 1
    base = kinks.gather(1, last[:, None]).squeeze(1)
    excess = at_kink.gather(1, last[:, None]).squeeze(1) - eps
    slope = active.gather(1, last[:, None]).squeeze(1).clamp_min(1)
    lam = torch.where(inside, 0.0, base + excess / slope)
    d = torch.minimum((a - lam[:, None]).clamp_min(0), room)
    norms = d.sum(1)  # float rounding of the interpolation: scale back onto the ball where it overshoots
    d = d * torch.where(norms > eps, eps / norms.clamp_min(1e-300), 1.0)[:, None]
    return (v.sign() * d).to(dtype).view(shape)


class Attack:
    """An attack configured once, then called as `attack(model, x, y=None)` on batches of any size.

    `y=None` attacks the model's own predictions (what the paper's authors ran); a label tensor attacks
    those labels, or, for attacks with `targeted=True`, aims at them.
    """

    name: ClassVar[str]
    Params: ClassVar[type[AttackParams]]
    uses_labels: ClassVar[bool] = True

    def __init__(self, params: AttackParams) -> None:
        """The attack at validated parameters (`build_attack` validates raw ones)."""
        if type(params) is not self.Params:
            raise TypeError(f"{self.name} takes {self.Params.__name__}, got {type(params).__name__}")
        self.params = params

    @classmethod
    def parse(cls, **params: Any) -> AttackParams:
        """Validated parameters; AttackParamError names the attack and each bad parameter."""
        try:
            return cls.Params(**params)
        except ValidationError as exc:
            raise AttackParamError(_describe_errors(cls.name, exc)) from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"

    def __call__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        p = self.params
        check_input(x, p.clip_min, p.clip_max)
        # The model's device and precision are where the work happens: a CUDA proxy is handed CPU images by
        # the actors that serve it, and a float64 model float32 images.
        x = x.to(*_device_and_dtype(model))
        targeted = bool(getattr(p, "targeted", False))
        y = check_labels(x, y, required=targeted) if self.uses_labels else None
        if generator is None and getattr(p, "seed", None) is not None:
            generator = torch.Generator().manual_seed(p.seed)
        # Gradients are needed even when the caller evaluates under no_grad or inference_mode.
        with eval_mode(model), torch.inference_mode(False), torch.enable_grad():
            x = x.detach().clone() if x.is_inference() else x.detach()
            out = self._generate(model, x, y, self._noise(x, generator))
        return out.detach()

    def chunk_size(self, x: torch.Tensor) -> int:
        if self.params.batch_size:
            return self.params.batch_size
        if x.device.type != "cpu":
            return 1024
        return max(1, _CPU_CHUNK_BYTES // (x[0].numel() * x.element_size()))

    def _noise(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor | None:
        """Random numbers for the whole batch at once, so results do not depend on the chunk size."""
        return None

    def _generate(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, noise: torch.Tensor | None
    ) -> torch.Tensor:
        """Run `_perturb` chunk by chunk into a fresh output tensor."""
        out = torch.empty_like(x)
        for chunk in chunks(len(x), self.chunk_size(x)):
            out[chunk] = self._perturb(
                model, x[chunk], None if y is None else y[chunk], None if noise is None else noise[chunk]
            )
        return out

    def _perturb(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, noise: torch.Tensor | None
    ) -> torch.Tensor:
        raise NotImplementedError

    def _clip(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(self.params.clip_min, self.params.clip_max)
