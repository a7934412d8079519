"""Small adversarially trained MNIST models, for cross-checks and benchmarks that need a robust model.

An undefended model falls to the first APGD steps, so comparing evaluation suites on it measures
nothing: robust models are where APGD-T and Square matter and where gradient masking shows. Wong et
al.'s small MNIST CNN (conv 16 4x4 s2, conv 32 4x4 s2, FC 100) trained with APGD examples of one threat
model (early_stop off: each sample's highest-loss point, as training wants), `epochs` passes over the
first `n_train` images; weights are cached per process.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from amc_dist.attacks import build_attack
from amc_dist.data import load_dataset
from amc_dist.tensors import as_tensor, to_unit

# Training budgets per threat model (MNIST): what each model is made robust to.
TRAINING = {"linf": (math.inf, 0.3), "l2": (2.0, 2.0), "l1": (1.0, 10.0)}


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 100),
        nn.ReLU(),
        nn.Linear(100, 10),
    )


@functools.cache
def _weights(
    threat: str, n_train: int, epochs: int, steps: int, eps: float, seed: int
) -> dict[str, torch.Tensor]:
    ord = TRAINING[threat][0]
    train = load_dataset("mnist", "train")
    x, y = to_unit(as_tensor(train.x[:n_train])), as_tensor(train.y[:n_train]).long()
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = small_cnn()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    batches = math.ceil(n_train / 64)
    for epoch in range(epochs):
        # Linf: eps ramps over the first half of the epochs (a full eps 0.3 from the start stalls training)
        scale = min(1.0, (epoch + 1) / max(1, epochs // 2)) if math.isinf(ord) else 1.0
        attack = build_attack(
            "apgd",
            ord=ord,
            eps=eps * scale,
            n_iter=steps,
            early_stop=False,
            l1_phases=False,
            seed=seed + epoch,
        )
        order = torch.randperm(n_train, generator=generator)
        for b in range(batches):
            rows = order[b * 64 : (b + 1) * 64]
            x_adv = attack(model, x[rows], y[rows])
            model.train()
            loss = F.cross_entropy(model(x_adv), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def robust_mnist_cnn(
    threat: str,
    n_train: int = 3000,
    epochs: int = 4,
    steps: int = 5,
    eps: float | None = None,
    seed: int = 0,
) -> nn.Module:
    """A small CNN (eval mode) adversarially trained for `threat` ('linf', 'l2' or 'l1') at `eps`
    (default MNIST's union budget), with APGD of `steps` iterations."""
    if threat not in TRAINING:
        raise ValueError(f"threat must be one of {', '.join(TRAINING)}, got {threat!r}")
    model = small_cnn()
    model.load_state_dict(_weights(threat, n_train, epochs, steps, eps or TRAINING[threat][1], seed))
    return model.eval()


def save(model: nn.Module, path: str) -> None:
    """The weights in float16 (a test fixture of a third of a megabyte; the forward runs in float32)."""
    torch.save({k: v.half() for k, v in model.state_dict().items()}, path)


def load(path: str) -> nn.Module:
    model = small_cnn()
    model.load_state_dict({k: v.float() for k, v in torch.load(path, weights_only=True).items()})
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    """Write the test fixtures: `python -m amc_dist.bench.robust_models --out tests/data`."""
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for robust_cnn_<threat>.pt")
    parser.add_argument("--threats", nargs="+", default=["linf", "l2"], choices=list(TRAINING))
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    for threat in args.threats:
        model = robust_mnist_cnn(threat, n_train=args.n_train, epochs=args.epochs, steps=args.steps)
        save(model, str(Path(args.out) / f"robust_cnn_{threat}.pt"))
        print(f"{threat}: written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
