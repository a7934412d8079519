"""VAT where the KL gradient vanishes: the input comes back, as Cleverhans (the authors' code) returned it.

Keeping the random start's direction instead (`vanishing_gradient="keep_direction"`) still moves such a
sample by eps: a stronger attack than the paper's, available by name only.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from amc_dist.attacks import AttackParamError, build_attack


class Gated(nn.Module):
    """Ten logits from one ReLU unit relu(mean(x) - threshold): flat (zero gradient) where mean(x) is below
    the threshold, input-dependent above it."""

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.threshold = threshold
        self.out = nn.Linear(1, 10)
        with torch.no_grad():
            self.out.weight.copy_(torch.linspace(-3, 3, 10)[:, None])
            self.out.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(x.flatten(1).mean(1, keepdim=True) - self.threshold))


def images(levels: list[float]) -> torch.Tensor:
    """8 x 8 images of the given mean brightness with a little texture, far from the [0, 1] box's edges."""
    texture = 0.05 * torch.rand(len(levels), 1, 8, 8, generator=torch.Generator().manual_seed(0))
    return torch.tensor(levels).view(-1, 1, 1, 1) + texture - texture.mean((1, 2, 3), keepdim=True)


def l2(delta: torch.Tensor) -> torch.Tensor:
    return delta.flatten(1).norm(dim=1)


def test_a_flat_model_gets_its_input_back():
    flat = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    nn.init.zeros_(flat[1].weight)
    x = images([0.5] * 6)
    for xi, iterations in ((1e-6, 1), (1.0, 6)):
        out = build_attack("vat", eps=2.0, xi=xi, num_iterations=iterations, seed=0)(flat, x)
        assert torch.equal(out, x)


def test_only_the_samples_whose_gradient_vanishes_come_back_unchanged():
    model = Gated(threshold=0.5).eval()
    x = images([0.3, 0.7, 0.35, 0.65])  # samples 0 and 2 sit in the flat region, 1 and 3 do not
    out = build_attack("vat", eps=0.5, xi=1e-2, num_iterations=2, seed=0)(model, x)
    assert torch.equal(out[[0, 2]], x[[0, 2]])
    assert torch.allclose(l2(out - x)[[1, 3]], torch.tensor([0.5, 0.5]), atol=1e-5)


def test_keep_direction_moves_every_sample_by_eps():
    model = Gated(threshold=0.5).eval()
    x = images([0.3, 0.7, 0.35, 0.65])
    attack = build_attack(
        "vat", eps=0.5, xi=1e-2, num_iterations=2, seed=0, vanishing_gradient="keep_direction"
    )
    out = attack(model, x)
    assert torch.allclose(l2(out - x), torch.full((4,), 0.5), atol=1e-5)
    # Where the gradient exists both settings agree.
    default = build_attack("vat", eps=0.5, xi=1e-2, num_iterations=2, seed=0)(model, x)
    assert torch.equal(out[[1, 3]], default[[1, 3]])


def test_a_direction_that_vanished_stays_zero():
    """The random probe pushes sample 0 across the ReLU's edge, where the gradient is zero; at the next
    iteration's zero probe the model is live again and autograd returns rounding noise, not a direction
    (the KL is at its minimum there). The sample comes back unchanged."""
    model = Gated(threshold=0.5).eval()
    x = images([0.5 + 1e-4, 0.5 + 1e-4])
    start = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    falls = (
        start.flatten(1).mean(1) / start.flatten(1).norm(dim=1) * 0.1 < -1e-4
    )  # the probe crosses the edge
    assert falls.any(), "the seed must send a probe across the edge"
    for iterations in (1, 2, 3):
        out = build_attack("vat", eps=1.0, xi=0.1, num_iterations=iterations, seed=3)(model, x)
        assert torch.equal(out[falls], x[falls])


def test_the_authors_behaviour_is_the_default_and_the_option_is_checked():
    assert build_attack("vat").params.vanishing_gradient == "return_input"
    with pytest.raises(AttackParamError, match="vanishing_gradient"):
        build_attack("vat", vanishing_gradient="keep")
