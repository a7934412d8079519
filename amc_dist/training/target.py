"""Train the undefended target M0 of a configured task from scratch."""

from __future__ import annotations

import torch
from torch import nn

from amc_dist.config import Config
from amc_dist.data.augment import augmentation_for
from amc_dist.events import EventSink, ignore
from amc_dist.models import build_model_for
from amc_dist.task import Task
from amc_dist.tensors import resolve_device
from amc_dist.training.trainer import EpochStore, Evaluator, fit


def build_target(config: Config, task: Task) -> nn.Module:
    return build_model_for(config.model.target, task.shape, task.num_classes, **config.model.target_kwargs)


def train_target(
    config: Config,
    task: Task,
    on_event: EventSink = ignore,
    *,
    evaluate: Evaluator | None = None,
    store: EpochStore | None = None,
    device: torch.device | None = None,
) -> nn.Module:
    """Fit M0 from scratch (seeded by `config.seed`) with the `training` settings on `device` (default:
    the config's `run.device`) and return it."""
    torch.manual_seed(config.seed)
    model = build_target(config, task).to(device or resolve_device(config.run.device))
    return fit(
        model,
        task.train.x,
        task.train.y,
        config.training,
        augment=augmentation_for(task.name) if config.data.augment else None,
        evaluate=evaluate,
        on_event=on_event,
        stage="target",
        seed=config.seed,
        store=store,
    )
