"""Train the undefended target M0 of a configured task and score it on the held-out test split."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from amc_dist.config import Config
from amc_dist.data.augment import augmentation_for
from amc_dist.evaluation.clean import error_rate
from amc_dist.events import EventSink, ignore
from amc_dist.models import build_model_for
from amc_dist.task import Task
from amc_dist.tensors import resolve_device
from amc_dist.training.trainer import fit


def build_target(config: Config, task: Task) -> nn.Module:
    return build_model_for(config.model.target, task.shape, task.num_classes, **config.model.target_kwargs)


def clean_validation(task: Task, size: int):
    """An evaluator scoring clean error on the first `size` validation images after each epoch."""
    part = task.validation.head(size)

    def evaluate(model: nn.Module) -> list[dict[str, Any]]:
        return [
            {
                "setting": "clean",
                "attack": "none",
                "error_rate": error_rate(model, part.x, part.y),
                "n": len(part),
            }
        ]

    return evaluate


def train_target(config: Config, task: Task, on_event: EventSink = ignore) -> tuple[nn.Module, float]:
    """Fit M0 from scratch with the `training` settings; return it and its held-out test error."""
    torch.manual_seed(config.seed)
    model = build_target(config, task).to(resolve_device(config.run.device))
    fit(
        model,
        task.train.x,
        task.train.y,
        config.training,
        augment=augmentation_for(task.name) if config.data.augment else None,
        evaluate=clean_validation(task, config.training.eval_size),
        on_event=on_event,
        stage="target",
        seed=config.seed,
    )
    return model, error_rate(model, task.test.x, task.test.y)
