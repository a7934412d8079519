"""How the attack benchmark times a call: best of interleaved repeats, with the model's passes counted.

Every library is timed under the same conditions: glibc's malloc kept warm (`warm_allocator`), the CPU
thread count that suits the model (`pick_threads`), and the timed calls going round-robin so that a burst of
load elsewhere on the machine hits every library alike (`Contender`, `time_once`). `gradient_throughput`
measures the limit our rows are compared against.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


class PassCounter(nn.Module):
    """Counts the samples a model sees, with gradient (an attack step) and without (a decision)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.reset()

    def reset(self) -> None:
        self.with_grad = 0
        self.without_grad = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            self.with_grad += len(x)
        else:
            self.without_grad += len(x)
        return self.model(x)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gradient_throughput(
    model: nn.Module,
    x: torch.Tensor,
    sizes: tuple[int, ...] = (32, 64, 100, 128, 200, 256, 500, 1000),
    seconds: float = 0.3,
    rounds: int = 3,
) -> dict[int, float]:
    """Input-gradient forward+backward samples/s of the model at each chunk size (the attacks' limit).

    Each size is warmed up once (kernel selection), then timed in `rounds` interleaved rounds, best kept.
    """

    def step(chunk: torch.Tensor) -> None:
        probe = chunk.detach().requires_grad_(True)
        torch.autograd.grad(model(probe).sum(), probe)
        _sync(x.device)

    usable = [s for s in sizes if s <= len(x)] or [len(x)]
    for size in usable:
        step(x[:size])
    rates = dict.fromkeys(usable, 0.0)
    for _ in range(rounds):
        for size in usable:
            done, start = 0, time.perf_counter()
            while done == 0 or time.perf_counter() - start < seconds:
                step(x[:size])
                done += size
            rates[size] = max(rates[size], done / (time.perf_counter() - start))
    return rates


@dataclass
class Contender:
    """One library's attack at one setting, timed best-of-repeats, interleaved with the others."""

    library: str
    run: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    n: int
    best: float = math.inf
    adv: torch.Tensor | None = None
    passes: tuple[int, int] = (0, 0)
    error: str | None = None


def time_once(contender: Contender, counter: PassCounter, x: torch.Tensor, y: torch.Tensor) -> None:
    """One timed call on the first `contender.n` inputs; keeps its output and pass counts if fastest."""
    counter.reset()
    _sync(x.device)
    start = time.perf_counter()
    adv = contender.run(x[: contender.n], y[: contender.n])
    _sync(x.device)
    seconds = time.perf_counter() - start
    if seconds < contender.best:
        contender.best, contender.adv = seconds, adv.detach()
        contender.passes = (counter.with_grad, counter.without_grad)


# glibc mallopt parameters: M_TRIM_THRESHOLD -1, M_MMAP_THRESHOLD -3, M_MMAP_MAX -4.
_WARM_ALLOCATOR = ((-4, 0), (-1, 1 << 30))  # no mmap for large blocks, no trimming of the heap


def warm_allocator() -> bool:
    """Make glibc's malloc keep freed memory for reuse, so every library is timed under the same allocator.

    Left alone, it depends on what the process ran before: a batch of 1000 LeNet activations (tens of MB)
    either reuses freed pages or gets fresh ones from the kernel, whose page faults cost about 40% of its
    speed (a new process gets fresh ones). Kept memory is the large-batch peers' best case. Returns False
    where there is no glibc.
    """
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(param, value) == 1 for param, value in _WARM_ALLOCATOR)


def pick_threads(model: nn.Module, x: torch.Tensor) -> int:
    """The CPU thread count with the best gradient throughput. On a busy 2-core machine one thread beats
    two by about 2x (OpenMP threads wait on each other when one is descheduled)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    rates = {}
    for threads in sorted({1, 2, 4, 8, 16, cores} & set(range(1, cores + 1))):
        torch.set_num_threads(threads)
        rates[threads] = max(gradient_throughput(model, x, sizes=(200,), seconds=0.5).values())
    best = max(rates, key=rates.get)
    torch.set_num_threads(best)
    return best
