"""Augmentation: shifts for SVHN and CIFAR-10, flips for CIFAR-10 only, identity for MNIST; seeded."""

import pytest
import torch
import torch.nn.functional as F

from amc_dist.data.augment import Augmentation, augmentation_for


def batch(n=48, channels=3, size=16):
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(0))


def transforms_matching(out, x, max_shift):
    """For each example, the set of (dy, dx, flipped) that turn x into out (zero-padded shifts)."""
    s = max_shift
    padded = F.pad(x, (s, s, s, s))
    h, w = x.shape[2:]
    options = [(dy, dx, flipped) for dy in range(-s, s + 1) for dx in range(-s, s + 1) for flipped in (0, 1)]
    candidates = torch.stack(
        [
            padded[:, :, s - dy : s - dy + h, s - dx : s - dx + w].flip([3] if flipped else [])
            for dy, dx, flipped in options
        ]
    )
    matches = (candidates == out).flatten(2).all(2).T.tolist()  # N x options
    return [{option for option, hit in zip(options, row, strict=True) if hit} for row in matches]


def test_cifar10_shifts_up_to_4_and_flips_some():
    x = batch()
    out = augmentation_for("cifar10")(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1
    found = transforms_matching(out, x, 4)
    assert all(found), "every output is a shifted (maybe flipped) input"
    flips = {next(iter(f))[2] for f in found}
    assert flips == {False, True}
    shifts = {(dy, dx) for f in found for dy, dx, _ in f}
    assert max(abs(d) for s in shifts for d in s) == 4 and len(shifts) > 10


def test_svhn_shifts_up_to_2_and_never_flips():
    x = batch()
    out = augmentation_for("svhn")(x, torch.Generator().manual_seed(2))
    found = transforms_matching(out, x, 2)
    assert all(any(not flipped for _, _, flipped in f) for f in found)
    assert all(not any(flipped for _, _, flipped in f) for f in found)
    assert not torch.equal(out, x)
    assert transforms_matching(out, x, 1).count(set()) > 0  # some shifts need 2 px


@pytest.mark.parametrize("name", ["mnist", "stl10", "/some/user/data.npz"])
def test_identity_elsewhere(name):
    x = batch(channels=1)
    assert torch.equal(augmentation_for(name)(x, torch.Generator().manual_seed(0)), x)


def test_deterministic_with_a_generator_and_varies_across_seeds():
    x = batch()
    augment = augmentation_for("cifar10")
    a = augment(x, torch.Generator().manual_seed(5))
    b = augment(x, torch.Generator().manual_seed(5))
    c = augment(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert augment(x).shape == x.shape  # torch's global generator when none is given


def test_flip_only_augmentation_flips_about_half():
    x = batch(n=400)
    out = Augmentation(flip=True)(x, torch.Generator().manual_seed(3))
    flipped = (out == x.flip(3)).flatten(1).all(1)
    assert torch.equal(out[~flipped], x[~flipped])
    assert 150 < int(flipped.sum()) < 250


def test_rejects_non_batches():
    with pytest.raises(ValueError, match="N x C x H x W"):
        augmentation_for("svhn")(torch.rand(3, 8, 8))
