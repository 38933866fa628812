"""Writers of tiny fake MNIST-format IDX files, so tests never need the real data or the network.

Test modules import it as `from fake_idx import write_fake_mnist` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

FILE_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array of any rank as IDX bytes (magic 0x0000 08 <ndim>, big-endian dims)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def _write(path: Path | str, payload: bytes, gz: bool) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload, mtime=0) if gz else payload)
    return path


def write_idx_images(path: Path | str, array: np.ndarray, gz: bool = False) -> Path:
    """Write an (N, H, W) uint8 array as an IDX image file (gzipped if `gz`); returns the path."""
    if np.asarray(array).ndim != 3:
        raise ValueError("images must be (N, H, W)")
    return _write(path, idx_bytes(array), gz)


def write_idx_labels(path: Path | str, array: np.ndarray, gz: bool = False) -> Path:
    """Write an (N,) array of values 0..255 as an IDX label file (gzipped if `gz`)."""
    if np.asarray(array).ndim != 1:
        raise ValueError("labels must be (N,)")
    return _write(path, idx_bytes(array), gz)


def fake_digits(rng: np.random.Generator, n: int, size: int = 28) -> np.ndarray:
    """(n, size, size) uint8 images of a soft stroke on black, enough like a digit for scaling."""
    out = np.empty((n, size, size), dtype=np.uint8)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    t = np.linspace(0.0, 1.0, 5)
    for lo in range(0, n, 1024):  # chunks keep the (n, 5, size, size) temporary small
        m = min(1024, n - lo)
        start = rng.uniform(0.3 * size, 0.7 * size, size=(m, 1, 2))
        angle = rng.uniform(0.0, 2 * np.pi, size=(m, 1))
        length = rng.uniform(0.2 * size, 0.4 * size, size=(m, 1))
        step = np.stack([np.cos(angle), np.sin(angle)], axis=-1) * length[..., None]
        points = start + t[None, :, None] * step  # (m, 5, 2)
        sigma = rng.uniform(0.05 * size, 0.09 * size, size=(m, 1, 1, 1))
        d2 = (yy - points[..., 0, None, None]) ** 2 + (xx - points[..., 1, None, None]) ** 2
        out[lo : lo + m] = np.rint(255 * np.exp(-d2 / (2 * sigma**2)).max(axis=1))
    return out


def _balanced_labels(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.permutation(np.arange(n) % 10).astype(np.uint8)


def write_fake_mnist(
    folder: Path | str,
    n_train: int = 60,
    n_test: int = 20,
    gz: bool = False,
    seed: int = 0,
    size: int = 28,
) -> tuple[np.ndarray, np.ndarray]:
    """Write the four IDX files into `folder` (created if needed); balanced labels per split.

    Returns the pool as the loader builds it: (images (n_train + n_test, size, size) uint8,
    labels (n_train + n_test,) int64), train first.
    """
    folder = Path(folder)
    suffix = ".gz" if gz else ""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        split_images = fake_digits(rng, n, size)
        split_labels = _balanced_labels(rng, n)
        write_idx_images(folder / f"{prefix}-images-idx3-ubyte{suffix}", split_images, gz)
        write_idx_labels(folder / f"{prefix}-labels-idx1-ubyte{suffix}", split_labels, gz)
        images.append(split_images)
        labels.append(split_labels)
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)
