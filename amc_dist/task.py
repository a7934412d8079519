"""A configured dataset as tensors: the training set, and the paper's split of the test set
(30% validation, 21% attack, 49% held-out test), held as uint8 on the CPU."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from amc_dist.config import DataConfig
from amc_dist.data import load_dataset, paper_split
from amc_dist.tensors import as_tensor


@dataclass(frozen=True)
class Split:
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def head(self, n: int) -> Split:
        return Split(self.x[:n], self.y[:n])


@dataclass(frozen=True)
class Task:
    name: str
    classes: tuple[str, ...]
    train: Split
    validation: Split
    attack: Split
    test: Split

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _split(dataset) -> Split:
    return Split(as_tensor(dataset.x), as_tensor(dataset.y).long())


def load_task(data: DataConfig) -> Task:
    train = load_dataset(data.name, "train", root=data.root)
    test = load_dataset(data.name, "test", root=data.root)
    parts = paper_split(test, seed=data.split_seed)
    train_split = _split(train)
    if data.train_subset is not None:
        train_split = train_split.head(data.train_subset)
    return Task(
        name=data.name,
        classes=tuple(train.classes),
        train=train_split,
        validation=_split(parts["validation"]),
        attack=_split(parts["attack"]),
        test=_split(parts["test"]),
    )
