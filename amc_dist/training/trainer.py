"""Fit one model: the undefended target, a baseline, or one cascade stage — the same function.

It takes its initial weights (the model), its data and an optional source of adversarial examples,
and reports through events. Inside a `torch.distributed` process group each rank trains on its own
shard and gradients are averaged across ranks, so a distributed runner calls exactly this code.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Protocol

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from amc_dist.config import TrainingConfig
from amc_dist.events import EventSink, event, ignore
from amc_dist.tensors import to_unit
from amc_dist.training.cost import CostMeter

# (model, x, y) -> adversarial parts, each (x_adv, y_adv, lambda_i); the lambdas sum to 1.
Perturber = Callable[[nn.Module, torch.Tensor, torch.Tensor], list[tuple[torch.Tensor, torch.Tensor, float]]]
Augmenter = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class EpochStore(Protocol):
    """Where `fit` keeps its state after every epoch, so a crash loses at most the partial epoch.

    `save` is called on every rank, the last epoch included (a distributed store's report is a collective
    that hangs unless all ranks join); the store decides what rank 0 writes.
    """

    def load(self) -> dict | None: ...

    def save(self, state: dict) -> None: ...


# model -> eval records ({"setting", "attack", "error_rate", "n"}) scored on validation data each epoch
Evaluator = Callable[[nn.Module], list[dict]]


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _optimizer(model: nn.Module, settings: TrainingConfig) -> torch.optim.Optimizer:
    if settings.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=settings.learning_rate,
            momentum=settings.momentum,
            weight_decay=settings.weight_decay,
            nesterov=settings.momentum > 0,
        )
    return torch.optim.Adam(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)


BUCKET_BYTES = 25 * 2**20  # DDP's default bucket: few collectives, each large enough to run at speed


def _average(tensors: list[torch.Tensor], world: int) -> None:
    """Average `tensors` over the ranks in place, in flat buckets of one dtype (one all-reduce each)."""
    buckets: dict[torch.dtype, list[list[torch.Tensor]]] = {}
    filled: dict[torch.dtype, int] = {}
    for t in tensors:
        rows = buckets.setdefault(t.dtype, [[]])
        if filled.get(t.dtype, 0) >= BUCKET_BYTES:
            rows.append([])
            filled[t.dtype] = 0
        rows[-1].append(t)
        filled[t.dtype] = filled.get(t.dtype, 0) + t.numel() * t.element_size()
    for rows in buckets.values():
        for bucket in rows:
            flat = _flatten_dense_tensors(bucket)
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            flat.div_(world)
            for t, averaged in zip(bucket, _unflatten_dense_tensors(flat, bucket), strict=True):
                t.copy_(averaged)


def _average_gradients(model: nn.Module, world: int) -> None:
    _average([p.grad for p in model.parameters() if p.grad is not None], world)


def _average_buffers(model: nn.Module, world: int) -> None:
    """BatchNorm's running statistics (every floating buffer) averaged over the ranks, so every rank
    evaluates and stores the same model; integer buffers (batches seen) agree already."""
    _average([b for b in model.buffers() if b.is_floating_point()], world)


def loss_terms(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, alpha: float, perturb: Perturber | None
) -> torch.Tensor:
    """alpha*J(x, y) + (1 - alpha) * sum_i lambda_i * J(x_adv_i, y_i); plain J(x, y) without a perturber.

    The clean batch and every adversarial slice go through the model in ONE forward pass, as the
    authors' code concatenated them: BatchNorm normalises over the whole batch and updates its running
    statistics once a step. Each term is still the mean over its own slice, weighted per sample.
    """
    if perturb is None:
        return F.cross_entropy(model(x), y)
    clean = [(x, y, alpha)] if alpha > 0 else []  # alpha 0 (adversarial only): no clean pass to pay for
    slices = clean + [
        (x_adv, y_adv, (1 - alpha) * weight) for x_adv, y_adv, weight in perturb(model, x, y) if len(x_adv)
    ]
    if not slices:
        raise ValueError("alpha is 0 and the perturber gave no adversarial examples: nothing to train on")
    inputs = torch.cat([xs for xs, _, _ in slices])
    targets = torch.cat([ys for _, ys, _ in slices])
    weights = torch.cat([torch.full((len(xs),), w / len(xs), device=x.device) for xs, _, w in slices])
    return (weights * F.cross_entropy(model(inputs), targets, reduction="none")).sum()


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: TrainingConfig,
    *,
    epochs: int | None = None,
    perturb: Perturber | None = None,
    augment: Augmenter | None = None,
    evaluate: Evaluator | None = None,
    on_event: EventSink = ignore,
    stage: str = "target",
    seed: int = 0,
    store: EpochStore | None = None,
    meter: CostMeter | None = None,
) -> nn.Module:
    """Train `model` in place on (x, y) (x uint8 or float in [0, 1], on the CPU) and return it.

    The model's device is where the work happens. Each epoch shuffles with a seeded generator shared
    by all ranks; the permutation is padded to a multiple of the world size (as DistributedSampler
    does) so every rank takes the same number of steps, and rank r trains on its [r::world] shard.
    With a `store`, training resumes after the last completed epoch it holds (rank 0 saves). A perturber
    with an `epoch_started(epoch)` method hears of each epoch (0-based) before it starts (an eps ramp).
    With a `meter` counting the model's passes (the caller's `meter.counting(model)`), the per-epoch
    evaluation is charged to its account `check` and its counts are kept in the epoch state, so a
    resumed fit goes on counting.
    """
    epochs = epochs or settings.epochs
    rank, world = rank_and_world()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    optimizer = _optimizer(model, settings)
    per_rank = math.ceil(len(x) / world)
    steps_per_epoch = math.ceil(per_rank / settings.batch_size)
    total = steps_per_epoch * epochs
    report_every = max(1, steps_per_epoch // 50)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total)
        if settings.schedule == "cosine"
        else None
    )
    first_epoch = 0
    state = store.load() if store is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        first_epoch = state["epoch"]
        if meter is not None:
            meter.units.update(state.get("cost") or {})
    step = first_epoch * steps_per_epoch
    on_event(event("stage_started", stage, step, total_steps=total, epochs=epochs, rank=rank, world=world))
    for epoch in range(first_epoch, epochs):
        if hasattr(perturb, "epoch_started"):
            perturb.epoch_started(epoch)
        model.train()
        order = torch.randperm(len(x), generator=generator)
        order = torch.cat([order, order[: per_rank * world - len(x)]])[rank::world]
        # the epoch's summed loss stays on the device: reading it (a sync) waits for the report points
        running, seen = torch.zeros((), device=device), 0
        for start in range(0, len(order), settings.batch_size):
            index = order[start : start + settings.batch_size]
            xb = to_unit(x[index], device)  # uint8 travels (4x fewer bytes), converted on the device
            if augment is not None:
                xb = augment(xb, generator)
            yb = y[index].to(device, non_blocking=True)
            loss = loss_terms(model, xb, yb, settings.alpha, perturb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if world > 1:
                _average_gradients(model, world)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            step += 1
            running += loss.detach() * len(index)
            seen += len(index)
            if step % report_every == 0:
                on_event(event("progress", stage, step, epoch=epoch + 1, total_steps=total, loss=loss.item()))
        if world > 1:
            _average_buffers(model, world)
        if evaluate is not None and rank == 0:
            with meter.charged_to("check") if meter is not None else contextlib.nullcontext():
                records = evaluate(model)
            for record in records:
                on_event(event("eval", stage, step, epoch=epoch + 1, **record))
        epoch_loss = running.item() / seen
        on_event(event("progress", stage, step, epoch=epoch + 1, total_steps=total, epoch_loss=epoch_loss))
        if store is not None:
            store.save(
                {
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "generator": generator.get_state(),
                    **({"cost": dict(meter.units)} if meter is not None else {}),
                }
            )
    model.eval()
    on_event(event("stage_finished", stage, step, epochs=epochs))
    return model
