"""Infinite-MNIST (Loosli, Canu & Bottou 2007): endless deformed digits, the MNIST attacker's proxy data.

The paper's attacker trains its proxy on such digits, derived from the MNIST training images, so its data
is not the target's test data. Example i >= 70000 is a deformation of MNIST training image
a = (i - 10000) mod 60000 (indices below 70000 are MNIST itself in the original numbering: 0-9999 test,
10000-69999 train), deterministic in i alone:

1. two smooth random displacement fields k1, k2 (horizontal, vertical): standard normal noise drawn from
   a generator seeded by i, Gaussian-smoothed (sigma 4 px, wrapping around the image so every pixel's
   displacement has the same distribution) and scaled so each component has a standard deviation of
   FIELD_STD = 0.8 px;
2. the image's translation tangent vectors Tx, Ty: horizontal and vertical derivatives of the image smoothed
   with a Gaussian of sigma 1 px (scipy.ndimage's derivative-of-Gaussian filter);
3. x' = clip(x + k1 * Tx - k2 * Ty, 0, 255), the first-order (tangent) approximation of moving the pixels;
4. a shift by one pixel in one of the 8 directions, or none (one of 9 choices, zeros come in), rounded to
   uint8.

The tangent approximation holds for displacements of about a pixel; larger ones smear a digit into a
ghosted copy of itself. Measured over examples 70000-74999 (3.9 million pixels), the displacement
|(k1, k2)| is 1.00 px on average, 1.96 px at the 95th percentile and 4.17 px at most; a typical image's
largest is 2.19 px (median over images). The earlier calibration (uniform noise, scale 34, fields not
wrapped) gave 2.14, 4.36, 13.2 and 5.68 px (tests/test_data_infinite_mnist.py).

Everything is vectorised over a batch; batches are processed in chunks to bound memory. Because each
example's noise comes from its own generator and the filters never mix examples, an example's pixels do
not depend on which other examples were generated with it.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from .dataset import Dataset

FIRST_INDEX = 70000
TRAIN_OFFSET = 10000
TRAIN_SIZE = 60000
FIELD_SIGMA = 4.0
FIELD_STD = 0.8
TANGENT_SIGMA = 1.0
_CHUNK = 4096


def infinite_mnist(train: Dataset, indices: np.ndarray) -> Dataset:
    """The infinite-MNIST examples `indices` (each >= 70000), deformed from the MNIST training set `train`."""
    indices = np.asarray(indices, dtype=np.int64)
    if len(train) != TRAIN_SIZE or train.x.shape[1:] != (1, 28, 28):
        raise ValueError(f"infinite-MNIST needs the 60000 MNIST training images, got {train.x.shape}")
    if len(indices) and indices.min() < FIRST_INDEX:
        raise ValueError(f"infinite-MNIST indices start at {FIRST_INDEX} (below are MNIST itself)")
    base = (indices - TRAIN_OFFSET) % TRAIN_SIZE
    x = np.empty((len(indices), 1, 28, 28), dtype=np.uint8)
    for start in range(0, len(indices), _CHUNK):
        chunk = slice(start, start + _CHUNK)
        x[chunk, 0] = deform(train.x[base[chunk], 0], indices[chunk])
    return Dataset("infinite-mnist", x, train.y[base], train.classes)


def displacements(indices: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Example `indices[b]`'s displacement fields (B x 2 x H x W, in px: k1, k2) and one-pixel shifts
    (B x 2: dy + 1, dx + 1, each in {0, 1, 2}), steps 1 and 4 above."""
    noise = np.empty((len(indices), 2, height, width))
    shifts = np.empty((len(indices), 2), dtype=np.int64)
    for b, index in enumerate(indices):
        rng = np.random.default_rng(int(index))
        noise[b] = rng.standard_normal((2, height, width))
        shifts[b] = np.divmod(rng.integers(9), 3)
    fields = ndimage.gaussian_filter(noise, sigma=(0, 0, FIELD_SIGMA, FIELD_SIGMA), mode="wrap")
    return FIELD_STD / _smoothed_noise_std(height, width) * fields, shifts


@functools.cache
def _smoothed_noise_std(height: int, width: int) -> float:
    """The standard deviation of unit white noise after the field's smoothing: the kernel's L2 norm."""
    impulse = np.zeros((height, width))
    impulse[0, 0] = 1.0
    return float(np.linalg.norm(ndimage.gaussian_filter(impulse, sigma=FIELD_SIGMA, mode="wrap")))


def deform(images: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Deform each uint8 image (B x H x W) as example `indices[b]` prescribes (steps 1-4 above)."""
    batch, height, width = images.shape
    fields, shifts = displacements(indices, height, width)
    x = images.astype(np.float64)
    sigma = (0, TANGENT_SIGMA, TANGENT_SIGMA)
    tangent_x = ndimage.gaussian_filter(x, sigma=sigma, order=(0, 0, 1))
    tangent_y = ndimage.gaussian_filter(x, sigma=sigma, order=(0, 1, 0))
    deformed = np.clip(x + fields[:, 0] * tangent_x - fields[:, 1] * tangent_y, 0, 255)
    # One-pixel shift: output[r, c] = input[r - dy, c - dx], zeros where that falls outside.
    padded = np.pad(deformed, ((0, 0), (1, 1), (1, 1)))
    rows = 2 - shifts[:, 0, None] + np.arange(height)
    cols = 2 - shifts[:, 1, None] + np.arange(width)
    shifted = padded[np.arange(batch)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return np.rint(shifted).astype(np.uint8)
