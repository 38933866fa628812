"""Writers of tiny fake STL-10 binary files, so tests never need the real data or the network.

Test modules import it as `from fake_stl import write_fake_stl10` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIDE = 96


def fake_photos(rng: np.random.Generator, n: int, side: int = SIDE, blobs: int = 3) -> np.ndarray:
    """(n, 3, side, side) uint8 images: a few soft Gaussian blobs per channel on a flat background.

    Smooth enough that down-scaling them means something, unlike pure noise.
    """
    out = np.empty((n, 3, side, side), dtype=np.uint8)
    grid = np.arange(side, dtype=np.float32)
    for lo in range(0, n, 256):  # chunks keep the float temporaries small for big pools
        m = min(256, n - lo)
        acc = np.broadcast_to(rng.uniform(20, 80, size=(m, 3, 1, 1)), (m, 3, side, side)).copy()
        for _ in range(blobs):
            centre = rng.uniform(0.1 * side, 0.9 * side, size=(2, m, 3, 1))
            sigma = rng.uniform(0.06 * side, 0.2 * side, size=(m, 3, 1))
            amplitude = rng.uniform(60, 170, size=(m, 3, 1, 1))
            gy = np.exp(-((grid - centre[0]) ** 2) / (2 * sigma**2))  # (m, 3, side)
            gx = np.exp(-((grid - centre[1]) ** 2) / (2 * sigma**2))
            acc += amplitude * gy[..., :, None] * gx[..., None, :]
        out[lo : lo + m] = np.clip(np.rint(acc), 0, 255)
    return out


def stl_image_bytes(images: np.ndarray) -> bytes:
    """(N, 3, H, W) images as STL-10 stores them: each channel column by column."""
    return np.ascontiguousarray(np.asarray(images, dtype=np.uint8).transpose(0, 1, 3, 2)).tobytes()


def write_fake_stl10(
    folder: Path | str, n_train: int = 20, n_test: int = 30, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Write `folder/stl10_binary/{train,test}_{X,y}.bin`; labels 1..10, balanced per split.

    Returns the pool as the reader decodes it: (images (n_train + n_test, 3, 96, 96) uint8,
    labels (n_train + n_test,) int64 in 0..9), train first.
    """
    binary = Path(folder) / "stl10_binary"
    binary.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for split, n in (("train", n_train), ("test", n_test)):
        split_images = fake_photos(rng, n)
        split_labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        (binary / f"{split}_X.bin").write_bytes(stl_image_bytes(split_images))
        (binary / f"{split}_y.bin").write_bytes((split_labels + 1).tobytes())
        images.append(split_images)
        labels.append(split_labels)
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)
