"""Renders docs/figures/infinite_mnist.png: MNIST training digits beside their infinite-MNIST deformations.

One row per class (its first training image), the original then six deformations (examples
70000 + a + 60000 k, k = 0..5, of training image a): the attacker's MNIST data is these images, derived
from the MNIST training set. Run from the repository root:

    .venv/bin/python docs/figures/infinite_mnist.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from amc_dist.data import load_dataset
from amc_dist.data.infinite_mnist import FIRST_INDEX, TRAIN_SIZE, infinite_mnist

DEFORMATIONS = 6
OUT = Path(__file__).with_name("infinite_mnist.png")


def main() -> Path:
    train = load_dataset("mnist", "train")
    firsts = [int(np.flatnonzero(train.y == label)[0]) for label in range(len(train.classes))]
    figure = Figure(figsize=(1.0 * (DEFORMATIONS + 1), 1.0 * len(firsts) + 0.3))
    FigureCanvasAgg(figure)
    for row, a in enumerate(firsts):
        indices = FIRST_INDEX + a + TRAIN_SIZE * np.arange(DEFORMATIONS)
        images = [train.x[a, 0], *infinite_mnist(train, indices).x[:, 0]]
        for col, image in enumerate(images):
            axes = figure.add_subplot(len(firsts), len(images), row * len(images) + col + 1)
            axes.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            axes.set_xticks([])
            axes.set_yticks([])
            if row == 0:
                axes.set_title("MNIST" if col == 0 else f"deformed {col}", fontsize=8)
    figure.tight_layout(pad=0.3)
    figure.savefig(OUT, format="png", dpi=100)
    return OUT


if __name__ == "__main__":
    print(main())
