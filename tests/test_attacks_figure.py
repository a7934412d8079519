"""The paper's Figure 1 as a PNG: one row per image, a clean column and one per attack, on the model given."""

from __future__ import annotations

import torch
from PIL import Image
from torch import nn

from amc_dist.attacks import PAPER_SETTINGS, build_attack
from amc_dist.evaluation import figures
from amc_dist.evaluation.figures import attack_figure


def test_attack_figure_writes_a_png_grid(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10)).eval()
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2])
    attacks = {"fgsm": build_attack("fgsm", eps=0.3), "vat": build_attack("vat", eps=2.0, seed=0)}
    out = attack_figure(model, x, y, attacks, str(tmp_path / "figure1.png"))
    with Image.open(out) as image:
        assert image.format == "PNG"
        # 1.6 x 1.7 inches per panel (+0.3 for titles) at 120 dpi: 3 columns (clean, FGSM, VAP), 3 rows
        assert image.size == (576, 648)
    assert not (tmp_path / "figure1.png.part").exists()


def test_paper_figure_attacks_the_model_given_at_the_authors_mnist_settings(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10)).eval()
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([3, 4])
    out = figures.paper_attack_figure(model, x, y, str(tmp_path / "figure1.png"), seed=3)
    with Image.open(out) as image:
        assert image.size == (960, 444)  # clean + FGSM, EAP, PGM, VAP; 2 rows

    seen = {}
    monkeypatch.setattr(figures, "attack_figure", lambda m, xs, ys, attacks, path: seen.update(attacks))
    figures.paper_attack_figure(model, x, y, "unused.png", seed=3)
    assert list(seen) == ["fgsm", "ead", "pgd", "vat"]  # the paper's column order
    for name, attack in seen.items():
        assert all(getattr(attack.params, k) == v for k, v in PAPER_SETTINGS["mnist"][name].items())
    assert seen["pgd"].params.seed == seen["vat"].params.seed == 3
