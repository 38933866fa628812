"""torch Datasets over built files, following torchvision's conventions.

`MNISTScale(path, split, realisation)` gives (float32 tensor 1 x H x W in [0, 1], int label),
plus the applied scale factor with `return_scale=True`. By default a realisation's split is read
into RAM (about 50 MB for MNIST-Scale); `in_memory=False` opens the file lazily in each process
instead, so the dataset pickles cheaply into DataLoader workers (fork, spawn or forkserver).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from .ops.pixels import to_unit_float
from .presets.mnist_scale import MNIST_SCALE_MEAN, MNIST_SCALE_STD
from .storage.format import realisation_group
from .storage.reader import open_ours, split_group

__all__ = ["MNIST_SCALE_MEAN", "MNIST_SCALE_STD", "MNISTScale"]

# Per-worker HDF5 chunk cache in lazy mode: a few dozen 256 KiB chunks, so sequential and
# batch reads decompress each chunk once.
LAZY_CHUNK_CACHE_BYTES = 16 * 1024 * 1024


class MNISTScale(Dataset):
    """One split of one realisation of an MNIST-Scale file."""

    def __init__(
        self,
        path: str | Path,
        split: str = "train",
        realisation: int = 0,
        transform: Callable[[torch.Tensor], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        return_scale: bool = False,
        in_memory: bool = True,
    ) -> None:
        self.path = Path(path)
        self.split = split
        self.realisation = realisation
        self.transform = transform
        self.target_transform = target_transform
        self.return_scale = return_scale
        self.in_memory = in_memory
        self._key = f"{realisation_group(realisation)}/{split}"
        with open_ours(self.path) as h5:
            group = split_group(h5, realisation, split)
            self.labels: np.ndarray = group["labels"][:]
            self.scales: np.ndarray = group["scales"][:]
            self.source_index: np.ndarray = group["source_index"][:]
            self._images: np.ndarray | None = group["images"][:] if in_memory else None
            self.image_shape: tuple[int, ...] = tuple(group["images"].shape[1:])
        self._h5: h5py.File | None = None
        self._h5_images: h5py.Dataset | None = None
        self._h5_pid: int | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def targets(self) -> torch.Tensor:
        """Labels as a tensor, as torchvision's MNIST exposes them."""
        return torch.from_numpy(self.labels)

    def _lazy_images(self) -> h5py.Dataset:
        # Open once per process (an h5py handle must never cross a fork or a pickle) and keep
        # the dataset object, so its chunk cache survives from item to item.
        if self._h5_images is None or self._h5_pid != os.getpid():
            self._h5 = h5py.File(self.path, "r", rdcc_nbytes=LAZY_CHUNK_CACHE_BYTES)
            self._h5_images = self._h5[self._key]["images"]
            self._h5_pid = os.getpid()
        return self._h5_images

    def _pixels(self, indices: np.ndarray) -> np.ndarray:
        if self._images is not None:
            return self._images[indices]
        # HDF5 wants increasing, distinct indices: read those, then put them back in order.
        wanted, where = np.unique(indices, return_inverse=True)
        return self._lazy_images()[wanted][where]

    def _checked(self, indices: Any) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        bad = (idx < -n) | (idx >= n)
        if bad.any():
            raise IndexError(f"index {int(idx[bad][0])} out of range for {n} samples")
        return idx % n if n else idx

    def _item(self, image: torch.Tensor, index: int) -> tuple[Any, ...]:
        target: Any = int(self.labels[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        if self.return_scale:
            return image, target, float(self.scales[index])
        return image, target

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: list[int]) -> list[tuple[Any, ...]]:
        """A whole batch with one read and one conversion (the DataLoader calls this)."""
        idx = self._checked(indices)
        images = torch.from_numpy(to_unit_float(self._pixels(idx)))
        if images.ndim == 3:  # grey: add the channel axis
            images = images.unsqueeze(1)
        return [self._item(images[n], int(i)) for n, i in enumerate(idx)]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_h5"] = None
        state["_h5_images"] = None
        state["_h5_pid"] = None
        return state

    def __repr__(self) -> str:
        return (
            f"MNISTScale(path={str(self.path)!r}, split={self.split!r}, "
            f"realisation={self.realisation}, samples={len(self)}, "
            f"in_memory={self.in_memory})"
        )
