"""Feature squeezing: exact against scipy and the peers, composable, and attackable through BPDA."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.ndimage
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from amc_dist.attacks import build_attack
from amc_dist.attacks.squeeze import BitDepth, MedianSmoothing, SqueezedModel, build_squeezer
from amc_dist.bench import mnist_lenet, mnist_test_images
from amc_dist.bench.attacks import import_advertorch


def images(seed: int, shape=(3, 2, 9, 7), levels: int | None = None) -> torch.Tensor:
    x = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    return x if levels is None else torch.round(x * levels) / levels  # few levels: many ties


@pytest.mark.parametrize("bits", range(1, 9))
def test_bit_depth_is_the_formula_and_matches_advertorch(bits):
    x = images(bits)
    ours = BitDepth(bits)(x)
    levels = 2**bits - 1
    assert np.array_equal(ours.numpy(), np.round(x.numpy() * levels) / levels)
    assert len(torch.unique(ours)) <= 2**bits
    assert torch.equal(BitDepth(bits)(ours), ours)
    bit_squeezing = import_advertorch().defenses.BitSqueezing
    assert torch.equal(bit_squeezing(bits)(x), ours)


@settings(max_examples=40, deadline=None)
@given(
    window=st.integers(2, 5),
    height=st.integers(1, 12),
    width=st.integers(1, 12),
    channels=st.integers(1, 3),
    levels=st.sampled_from([None, 1, 3]),
    seed=st.integers(0, 10_000),
)
def test_median_smoothing_equals_scipy_exactly(window, height, width, channels, levels, seed):
    """scipy.ndimage.median_filter's defaults: 'reflect' padding, even windows centred at window // 2,
    the upper middle value of an even count."""
    x = images(seed, (2, channels, height, width), levels)
    expected = scipy.ndimage.median_filter(x.numpy(), size=(1, 1, window, window))
    assert np.array_equal(MedianSmoothing(window)(x).numpy(), expected)


def test_median_smoothing_in_float64_and_on_three_dimensional_input():
    x = images(1).double()
    assert np.array_equal(
        MedianSmoothing(3)(x).numpy(), scipy.ndimage.median_filter(x.numpy(), size=(1, 1, 3, 3))
    )
    single = x[0]  # C x H x W
    assert torch.equal(MedianSmoothing(4)(single), MedianSmoothing(4)(x)[0])


@pytest.mark.parametrize(("factory", "value", "name"), [
    (BitDepth, 0, "bits"), (BitDepth, 9, "bits"), (BitDepth, 2.5, "bits"), (BitDepth, True, "bits"),
    (MedianSmoothing, 1, "window"), (MedianSmoothing, 6, "window"), (MedianSmoothing, "3", "window"),
])  # fmt: skip
def test_bad_squeezer_parameters_raise_naming_them(factory, value, name):
    with pytest.raises(ValueError, match=name):
        factory(value)


def test_squeezers_compose_in_order_and_say_what_they_are():
    x = images(2)
    both = build_squeezer(bit_depth=2, median_window=3)
    assert torch.equal(both(x), MedianSmoothing(3)(BitDepth(2)(x)))
    assert both.describe() == "bit_depth=2, median_window=3"
    assert build_squeezer(median_window=2).describe() == "median_window=2"
    assert torch.equal(build_squeezer()(x), x) and build_squeezer().describe() == "none"


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 7 * 5, 4))


@pytest.mark.parametrize("squeezer", [BitDepth(3), MedianSmoothing(2), build_squeezer(1, 3)])
def test_bpda_forward_is_the_squeezer_and_backward_the_identity(squeezer):
    model, x = small_model(), images(3).requires_grad_(True)
    plain, bpda = SqueezedModel(model, squeezer), SqueezedModel(model, squeezer, bpda=True)
    assert torch.equal(plain(x), bpda(x))
    assert torch.equal(plain(x), model(squeezer(x)))

    squeezed = squeezer(x).detach().requires_grad_(True)
    (at_squeezed,) = torch.autograd.grad(model(squeezed).sum(), squeezed)
    (through_bpda,) = torch.autograd.grad(bpda(x).sum(), x)
    assert torch.equal(through_bpda, at_squeezed)
    assert through_bpda.abs().sum() > 0


def test_bit_depth_masks_gradients_unless_attacked_through_bpda(seed):
    """The reason for BPDA: a 1-bit squeezer zeroes every gradient, so a plain gradient attack does
    nothing, while the same attack through BPDA still finds errors (at eps 0.3 only pixels within 0.3
    of the 0.5 threshold can flip, so 1-bit squeezing is genuinely strong on MNIST, as Xu et al. found)."""
    lenet = mnist_lenet(seed=seed)
    x, y = mnist_test_images(200)
    squeezer = BitDepth(1)
    plain, bpda = SqueezedModel(lenet, squeezer), SqueezedModel(lenet, squeezer, bpda=True)
    x_grad = x.clone().requires_grad_(True)
    assert torch.autograd.grad(plain(x_grad).sum(), x_grad)[0].abs().sum() == 0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        attack = build_attack("pgd", eps=0.3, eps_iter=0.05, nb_iter=10, rand_init=False)

    def error(adv: torch.Tensor) -> float:
        with torch.no_grad():
            return (plain(adv).argmax(1) != y).float().mean().item()

    clean = error(x)
    assert error(attack(plain, x, y)) == clean
    assert error(attack(bpda, x, y)) > clean + 0.15
