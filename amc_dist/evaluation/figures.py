"""The paper's Figure 1: a few MNIST test digits, clean and under FGSM, EAP, PGM and VAP, with predictions.

Seeing the examples is the quickest sanity check of an attack: FGSM and PGM add dense Linf noise, EAP
changes a few pixels, VAP a smooth L2 pattern. Each panel is titled with the model's prediction, red
where it differs from the true label. Matplotlib's Agg canvas only: no display, no global pyplot state.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

from amc_dist.attacks import PAPER_NAMES, PAPER_SETTINGS, build_attack
from amc_dist.storage import atomic_write

# attack(model, x) -> adversarial x; an `Attack` from build_attack is one
AttackFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]
FIGURE_ORDER = ("fgsm", "ead", "pgd", "vat")  # the paper's Figure 1 columns: FGSM, EAP, PGM, VAP
RANDOM = ("pgd", "vat")  # the attacks that take a seed


def attack_figure(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, attacks: Mapping[str, AttackFn], out_path: str
) -> str:
    """Write a PNG grid to `out_path` (local path or fsspec URL): one row per image of x (N x 1 x H x W in
    [0, 1]), a clean column then one per attack, each attack called as attack(model, x) (the model's own
    labels, as the paper's authors ran them). Returns out_path."""
    columns = {"clean": x, **{name: attack(model, x) for name, attack in attacks.items()}}
    with torch.no_grad():
        predictions = {name: model(images).argmax(1) for name, images in columns.items()}
    rows = len(x)
    figure = Figure(figsize=(1.6 * len(columns), 1.7 * rows + 0.3))
    FigureCanvasAgg(figure)
    for col, (name, images) in enumerate(columns.items()):
        for row in range(rows):
            axes = figure.add_subplot(rows, len(columns), row * len(columns) + col + 1)
            axes.imshow(images[row, 0].detach().cpu().numpy(), cmap="gray", vmin=0, vmax=1)
            axes.set_xticks([])
            axes.set_yticks([])
            predicted = int(predictions[name][row])
            color = "black" if predicted == int(y[row]) else "red"
            axes.set_xlabel(f"pred {predicted}", color=color, fontsize=9)
            if row == 0:
                axes.set_title(PAPER_NAMES.get(name, name), fontsize=10)
    figure.tight_layout()
    with atomic_write(out_path) as handle:
        figure.savefig(handle, format="png", dpi=120)
    return out_path


def paper_attack_figure(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, out_path: str, seed: int = 0
) -> str:
    """Figure 1 of `model` (an MNIST classifier in eval mode) on images x with true labels y, under FGSM,
    EAP, PGM and VAP at the authors' MNIST settings (PGM and VAP seeded with `seed`). Returns out_path."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the authors' PGM cannot reach its eps-ball: shown as they ran it
        attacks = {
            name: build_attack(
                name, **PAPER_SETTINGS["mnist"][name], **({"seed": seed} if name in RANDOM else {})
            )
            for name in FIGURE_ORDER
        }
    return attack_figure(model, x, y, attacks, out_path)
