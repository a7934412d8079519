"""The paper's Figure 1 as a PNG: one row per image, a clean column and one per attack."""

from __future__ import annotations

import torch
from PIL import Image
from torch import nn

from amc_dist.attacks import build_attack
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
