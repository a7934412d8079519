"""The IDX format (MNIST's, and the format accepted for user data), read and written in one place.

IDX is big-endian: two zero bytes, a type code (0x08 = unsigned byte, the only type image datasets use),
the number of dimensions, then one uint32 per dimension and the raw data. Files may be gzipped; gzip is
recognised by its magic bytes, not by the file name.
"""

from __future__ import annotations

import gzip
import struct

import numpy as np

# The standard layout of an IDX dataset directory (MNIST's file names), per split: images, labels.
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"


def decode_idx(data: bytes, what: str = "IDX data") -> np.ndarray:
    """The uint8 array stored in IDX `data` (gzipped or not); ValueError naming `what` if malformed."""
    if data[:2] == _GZIP_MAGIC:
        data = gzip.decompress(data)
    if len(data) < 4 or data[:2] != b"\0\0":
        raise ValueError(f"{what} is not an IDX file (it must start with two zero bytes)")
    type_code, ndim = data[2], data[3]
    if type_code != _UBYTE:
        raise ValueError(f"{what}: IDX type code 0x{type_code:02x} is not supported, only 0x08 (ubyte)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{what}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        raise ValueError(f"{what}: IDX header {shape} implies {expected} bytes, the file has {len(data)}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def encode_idx(array: np.ndarray) -> bytes:
    """The uncompressed IDX bytes of a uint8 array."""
    if array.dtype != np.uint8:
        raise ValueError(f"IDX encoding needs uint8, got {array.dtype}")
    header = struct.pack(f">BBBB{array.ndim}I", 0, 0, _UBYTE, array.ndim, *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def images_and_labels(images: bytes, labels: bytes, what: str) -> tuple[np.ndarray, np.ndarray]:
    """`x` as N x 1 x H x W uint8 and `y` as int64 from an IDX image file (N x H x W) and label file (N)."""
    x = decode_idx(images, f"{what} images")
    y = decode_idx(labels, f"{what} labels")
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(
            f"{what}: expected images N x H x W and N labels, got shapes {x.shape} and {y.shape}"
        )
    return x[:, None].copy(), y.astype(np.int64)
