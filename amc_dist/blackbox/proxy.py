"""Proxy models (P' and P''): the attacker's own architecture fitted to the oracle's answers on the
attacker's own images (paper section 3.1). Only the oracle's predictive interface is used."""

from __future__ import annotations

import torch
from torch import nn

from amc_dist.blackbox.oracle import Interface, Oracle, ask
from amc_dist.config import TrainingConfig
from amc_dist.evaluation.clean import predict
from amc_dist.events import EventSink, ignore
from amc_dist.training.trainer import fit


def train_proxy(
    oracle: Oracle,
    proxy: nn.Module,
    x: torch.Tensor,
    interface: Interface,
    settings: TrainingConfig,
    *,
    on_event: EventSink = ignore,
    stage: str = "proxy",
    seed: int = 0,
) -> nn.Module:
    """Label the attacker's images `x` once through `interface`, then fit `proxy` (its current weights
    are the starting point, so a proxy can be re-fitted to a new target) on those answers."""
    targets = ask(oracle, x, interface)
    return fit(proxy, x, targets, settings, on_event=on_event, stage=stage, seed=seed)


def agreement(proxy: nn.Module, model: nn.Module, x: torch.Tensor) -> float:
    """Fraction of images where the proxy predicts `model`'s top label: the defender's measurement, from
    the model it owns, so it asks no oracle and spends none of the attacker's budget."""
    return (predict(proxy, x) == predict(model, x)).float().mean().item()
