"""AutoAttack's own code (PyPI `pyautoattack` 0.2.0, Croce and Hein), run in isolation at our settings:
the reference our per-threat-model suite is checked and timed against.

It seeds torch's global generator (and CUDA's), never calls `model.eval()`, installs a `sys.settrace`
hook during one of its checks and logs warnings through the 'auto-attack' logger. Here the model runs in
eval mode with every submodule's mode restored afterwards, the global random state and the trace hook
come back as they were, and its logger is quiet. `version='custom'` runs the attacks our suite runs
(APGD-CE, APGD-T, Square) with AutoAttack's standard settings for the norm (L1: 5 APGD-CE restarts with
the 3/2/1 eps schedule, 5 targets; Linf and L2: 1 restart, 9 targets) unless smaller budgets are given;
`version='standard'` adds FAB-T between APGD-T and Square, as AutoAttack's standard evaluation does.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections.abc import Iterator

import torch
from torch import nn

from amc_dist.attacks.base import eval_mode

NORMS = {math.inf: "Linf", 2.0: "L2", 1.0: "L1"}


@contextlib.contextmanager
def isolated(model: nn.Module) -> Iterator[None]:
    """Eval mode, and torch's global RNG, the trace hook and AutoAttack's logger level as they were."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    trace = sys.gettrace()
    logger = logging.getLogger("auto-attack")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with eval_mode(model):
            yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        sys.settrace(trace)
        logger.setLevel(level)


def autoattack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    ord: float,
    eps: float,
    version: str = "custom",
    n_iter: int = 100,
    n_restarts: int | None = None,
    n_targets: int | None = None,
    n_queries: int = 5000,
    seed: int = 0,
    batch_size: int | None = None,
) -> torch.Tensor:
    """AutoAttack's adversarial examples for (x, y) under the `ord` ball of radius eps (images it does not
    fool come back clean). Budgets default to AutoAttack's; all images go in one batch by default (its
    Square is fastest so)."""
    from pyautoattack import AutoAttack
    from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted

    if version not in ("custom", "standard"):
        raise ValueError(f"version must be 'custom' or 'standard', got {version!r}")
    norm = NORMS[float(ord)]
    l1 = norm == "L1"
    restarts = n_restarts or (5 if l1 else 1)
    targets = n_targets or (5 if l1 else 9)
    device = x.device
    with isolated(model):
        if version == "custom":
            attacks = ["apgd-ce", "apgd-t", "square"]
            aa = AutoAttack(
                model, norm=norm, eps=eps, version="custom", attacks=attacks, seed=seed, device=device
            )
        else:
            aa = AutoAttack(model, norm=norm, eps=eps, version="standard", seed=seed, device=device)
            aa.fab.n_iter = n_iter
            aa.fab.n_target_classes = targets
        # Its schedule's checkpoints are set at construction from n_iter: build the APGDs at ours.
        common = {"norm": norm, "eps": eps, "seed": seed, "device": device, "use_largereps": l1}
        aa.apgd = APGDAttack(model, n_iter=n_iter, n_restarts=restarts, logger=aa.logger, **common)
        aa.apgd_targeted = APGDAttack_targeted(
            model, n_iter=n_iter, n_restarts=1, n_target_classes=targets, logger=aa.logger, **common
        )
        aa.square.n_queries = n_queries
        x_adv, _ = aa.run_standard_evaluation(x, y, batch_size=batch_size or len(x))
    return x_adv.detach()
