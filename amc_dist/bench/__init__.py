"""Benchmarks that print tables and write JSON, and the small reference workload they share.

`mnist_lenet` gives a LeNet trained briefly on real MNIST plus test images: attacks measured on an
untrained model say nothing (its predictions barely depend on the input), and a few seconds of training
is enough for a ~97% model whose attacks behave like the paper's.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from amc_dist.config import TrainingConfig
from amc_dist.data import load_dataset
from amc_dist.models import build_model
from amc_dist.tensors import as_tensor, to_unit
from amc_dist.training.trainer import fit


def mnist_test_images(n: int, root: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n MNIST test images as float32 in [0, 1] and their labels."""
    test = load_dataset("mnist", "test", root)
    return to_unit(as_tensor(test.x[:n])), as_tensor(test.y[:n])


@functools.cache
def _lenet_weights(n_train: int, epochs: int, seed: int, root: str | None) -> dict[str, torch.Tensor]:
    train = load_dataset("mnist", "train", root)
    torch.manual_seed(seed)
    model = build_model("lenet")
    settings = TrainingConfig(epochs=epochs, batch_size=64, optimizer="adam", learning_rate=2e-3)
    fit(model, as_tensor(train.x[:n_train]), as_tensor(train.y[:n_train]), settings, seed=seed)
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def mnist_lenet(n_train: int = 60000, epochs: int = 1, seed: int = 0, root: str | None = None) -> nn.Module:
    """A fresh LeNet (eval mode) with weights fitted once per process on the first n_train MNIST images.

    One epoch on all 60k images takes about 6 s on 2 CPU cores and reaches ~97% test accuracy; the weights
    are cached, so tests, the benchmark and the figure in one process train only once.
    """
    model = build_model("lenet")
    model.load_state_dict(_lenet_weights(n_train, epochs, seed, root))
    return model.eval()
