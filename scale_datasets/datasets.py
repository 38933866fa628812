"""torch Datasets over built files, following torchvision's conventions.

`ScaleDataset(path, split, realisation)` opens any file of ours and gives (float32 tensor C x H x W,
int label), plus the sample's plan value (its scale factor, or its resolution) with
`return_scale=True`. Pixels files hold rendered uint8 samples (values / 255, in [0, 1]); on-access
files hold the source pool and the plan, and a batch is rendered when it is read, with the render
op recorded in the file (one vectorised call per batch, or per plan value in it, never a loop
over items). `base_transform` runs on each base sample (C x H x W in [0, 1]) before rendering:
the train augmentations of the Fourier protocol go there. `resolution=r` renders every sample at
r; `scales=` makes an evaluation grid; `redraw="per-epoch"` draws fresh scales every epoch.

By default a split is read into RAM, with the sha256 of every dataset read checked against the
one recorded at build time; `in_memory=False` opens the file lazily in each process instead
(checking the small columns on open), so the dataset pickles cheaply into DataLoader workers
(fork, spawn or forkserver).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from .errors import InvalidParameterError
from .ops.render import get_render_op
from .presets import find_preset
from .presets.mnist_multires import MNIST_MULTIRES_MEAN, MNIST_MULTIRES_STD
from .presets.mnist_scale import MNIST_SCALE_MEAN, MNIST_SCALE_STD
from .presets.stl10_scale import STL10_SCALE_MEAN, STL10_SCALE_STD
from .rendering import as_float_samples, render_samples
from .storage.checked import member, read_checked, read_rows
from .storage.format import BASE_GROUP, realisation_group
from .storage.reader import layout_and_render, open_ours, split_group

__all__ = [
    "MNIST_MULTIRES_MEAN",
    "MNIST_MULTIRES_STD",
    "MNIST_SCALE_MEAN",
    "MNIST_SCALE_STD",
    "STL10_SCALE_MEAN",
    "STL10_SCALE_STD",
    "MNISTScale",
    "ScaleDataset",
]

# Per-worker HDF5 chunk cache in lazy mode: a few dozen 256 KiB chunks, so sequential and
# batch reads decompress each chunk once.
LAZY_CHUNK_CACHE_BYTES = 16 * 1024 * 1024


REDRAWS = ("fixed", "per-epoch")
RENDER_ON = ("dataset", "device")


def _statistic(value: Any) -> float | tuple[float, ...]:
    """A recorded train statistic: one float, or one per channel."""
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    return float(arr[0]) if arr.size == 1 else tuple(float(v) for v in arr)


class ScaleDataset(Dataset):
    """One split of one realisation of any file built by scale-datasets.

    Items are ``(sample, label)``: a float32 tensor (C, H, W) in [0, 1] (Fourier renders may
    ring slightly outside it) and an int, then the plan value with ``return_scale`` and the scale
    bin with ``return_scale_bin``.

    Args:
        path, split, realisation: the file and which of its splits.
        transform, target_transform: per item, after rendering (torchvision's convention).
        base_transform: per base sample (C, H, W in [0, 1]) before a multi-resolution render.
        return_scale: add each item's scale factor or resolution.
        in_memory: load the split (checking every digest) or open the file lazily per process.
        resolution: render every sample of a multi-resolution file at this resolution.
        cache: keep renders after their first (fixed renders only).
        device: keep the stored samples on this device and render batches there.
        scales: an evaluation grid of scale factors: len(scales) x N items, scale-major.
        redraw: "fixed" (the stored draw) or "per-epoch" (``set_epoch(e)``; shared by workers).
        return_scale_bin: add Basting et al.'s scale bin (dynamic-mnist).
        render_on: "dataset", or "device" to hand over (base sample, label, value [, bin]) for
            ``render_batch`` on the training device.
    """

    def __init__(
        self,
        path: str | Path,
        split: str = "train",
        realisation: int = 0,
        transform: Callable[[torch.Tensor], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        base_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        return_scale: bool = False,
        in_memory: bool = True,
        resolution: int | None = None,
        cache: bool = False,
        device: str | torch.device | None = None,
        scales: Sequence[float] | np.ndarray | None = None,
        redraw: str = "fixed",
        return_scale_bin: bool = False,
        render_on: str = "dataset",
    ) -> None:
        self.path = Path(path)
        self.split = split
        self.realisation = realisation
        self.transform = transform
        self.target_transform = target_transform
        self.base_transform = base_transform
        self.in_memory = in_memory
        self.resolution = resolution
        self.redraw = redraw
        self.render_on = render_on
        # render_on="device": items are (base sample, label, plan value [, bin]), the value
        # always, since render_batch needs it.
        self.return_scale = return_scale or render_on == "device"
        self.return_scale_bin = return_scale_bin
        # The epoch, in shared memory for per-epoch redraws: DataLoader workers read it.
        self._epoch_cell = torch.zeros(1, dtype=torch.int64)
        if redraw == "per-epoch":
            self._epoch_cell.share_memory_()
        self._drawn_epoch = 0
        self._bin_origin: float | None = None
        self._grid = None if scales is None else np.asarray(scales, dtype=np.float32).reshape(-1)
        self.device = torch.device(device) if device is not None else None
        self._key = f"{realisation_group(realisation)}/{split}"
        with open_ours(self.path) as h5:
            self.layout, render = layout_and_render(h5)
            self.preset = str(h5.attrs.get("preset", ""))
            # The file's preset (None for one this version lacks): redraws, bins, constants.
            self._preset = find_preset(self.preset)
            self.params: dict[str, Any] = json.loads(h5.attrs["params"])
            self._op = get_render_op(render["op"])
            self._op_params: dict[str, Any] = render["params"]
            self.plan_column: str = render["column"]
            self._check_options()
            self._check_preset_features()
            if self.layout == "on-access" and "shard" in h5.attrs:
                raise InvalidParameterError(
                    f"path: {self.path} is one shard of an on-access build (its /base holds only "
                    "part of the pool); join the shards with `scale-datasets merge` first"
                )
            group = split_group(h5, realisation, split)
            self.labels: np.ndarray = read_checked(self.path, member(group, "labels"))
            self.source_index = read_checked(self.path, member(group, "source_index"))
            self.values: np.ndarray = read_checked(self.path, member(group, self.plan_column))
            # What each sample is rendered with this epoch: its planned value, `resolution`
            # for all, or the epoch's redraw (see set_epoch).
            self._render_values = (
                self.values if resolution is None else np.full_like(self.values, resolution)
            )
            # Normalisation: the file's own train statistics, else the preset's constants.
            statistics = group.parent.attrs
            fallback = getattr(self._preset, "normalisation", None) or (None, None)
            recorded = "train_mean" in statistics
            self.mean: Any = _statistic(statistics["train_mean"]) if recorded else fallback[0]
            self.std: Any = _statistic(statistics["train_std"]) if recorded else fallback[1]
            # The stored samples (pixels) or the source pool (on-access) this split reads.
            pixels = self.layout == "pixels"
            self._samples_name = f"{self._key}/images" if pixels else f"{BASE_GROUP}/images"
            stored = member(h5, self._samples_name)
            self.base_shape: tuple[int, ...] = tuple(stored.shape[1:])
            self._rows: np.ndarray | None = None  # item -> row of _samples (on-access)
            self._samples: torch.Tensor | None = None
            if in_memory:
                self._load(stored)
        # Rendered samples by item, kept after their first render (on-access files without a
        # base_transform: the renders are then fixed).
        self._cache: list[torch.Tensor | None] | None = None
        if cache and self.layout == "on-access" and base_transform is None:
            self._cache = [None] * len(self)  # emptied by set_epoch when renders change
        self._h5: h5py.File | None = None
        self._h5_samples: h5py.Dataset | None = None
        self._h5_pid: int | None = None

    # The layouts this class reads (a subclass may narrow it).
    layouts: tuple[str, ...] = ("pixels", "on-access")

    def _check_options(self) -> None:
        if self.layout not in self.layouts:
            raise InvalidParameterError(
                f"path: {self.path} is a {self.preset} file (layout {self.layout}); "
                f"{type(self).__name__} reads {', '.join(self.layouts)} files: use ScaleDataset"
            )
        if self.layout == "pixels" and (
            self.base_transform is not None
            or self.resolution is not None
            or self._grid is not None
            or self.redraw != "fixed"
        ):
            raise InvalidParameterError(
                f"base_transform, resolution, scales, redraw: {self.path} stores rendered pixels "
                "(layout pixels); they apply to on-access files only"
            )
        if self.render_on not in RENDER_ON:
            raise InvalidParameterError(
                f"render_on: must be one of {', '.join(RENDER_ON)}, got {self.render_on!r}"
            )
        if self.render_on == "device" and (
            self.layout != "on-access" or self.transform or self.base_transform
        ):
            raise InvalidParameterError(
                "render_on: 'device' hands over the base samples of an on-access file; apply "
                "transforms after render_batch"
            )
        if self.redraw not in REDRAWS:
            raise InvalidParameterError(
                f"redraw: must be one of {', '.join(REDRAWS)}, got {self.redraw!r}"
            )
        if self.layout == "on-access" and not self._op.by_value and self.base_transform:
            raise InvalidParameterError(
                f"base_transform: {self.path} renders uint8 digits with {self._op.name}; "
                "use transform= on the rendered sample"
            )
        if self._grid is not None:
            if self._op.by_value or self.plan_column != "scales":
                raise InvalidParameterError(f"scales: {self.path} is not a file of scale factors")
            if not (np.all(np.isfinite(self._grid)) and np.all(self._grid > 0)):
                raise InvalidParameterError("scales: must be finite and > 0")
        if self.resolution is not None:
            if not self._op.by_value or self.plan_column != "resolutions":
                raise InvalidParameterError(
                    f"resolution: {self.path} is not a multi-resolution file"
                )
            if isinstance(self.resolution, bool) or not 1 <= int(self.resolution) <= 4096:
                raise InvalidParameterError(
                    f"resolution: must be in 1..4096, got {self.resolution}"
                )

    def _check_preset_features(self) -> None:
        """Per-epoch draws and scale bins come from the file's preset (and law): check they
        exist when the dataset opens, not at the first item."""
        preset = self._preset
        if self.redraw == "per-epoch" and not hasattr(preset, "redraw"):
            raise InvalidParameterError(f"redraw: {self.preset} files have no per-epoch draws")
        if self.return_scale_bin:
            if not hasattr(preset, "bin_origin"):
                raise InvalidParameterError(
                    f"return_scale_bin: {self.preset} files have no scale bins"
                )
            self._bin_origin = preset.bin_origin(self.params, self.split)

    def _load(self, stored: h5py.Dataset) -> None:
        used = None
        if self.layout == "on-access":  # keep only the pool rows this split uses
            used, self._rows = np.unique(self.source_index, return_inverse=True)
        self._samples = torch.from_numpy(read_checked(self.path, stored, used))
        if self.device is not None:
            self._samples = self._samples.to(self.device)

    @property
    def scales(self) -> np.ndarray:
        """Each sample's scale factor this epoch (files whose plan column is scales; with a
        `scales=` grid, still one per sample: item j is at the grid's scale j // N)."""
        self._require_column("scales")
        self._sync_epoch()
        return self._render_values

    @property
    def resolutions(self) -> np.ndarray:
        """Each sample's resolution (multi-resolution files; all equal to `resolution` if set)."""
        self._require_column("resolutions")
        return self._render_values

    def _require_column(self, name: str) -> None:
        if self.plan_column != name:
            raise AttributeError(
                f"{self.path} has no {name} (its plan column is {self.plan_column})"
            )

    def __len__(self) -> int:
        """Samples of the split, times the number of scales of a `scales=` grid."""
        return len(self.labels) * (1 if self._grid is None else len(self._grid))

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch; with `redraw="per-epoch"` its scales (epoch 0: the stored draw;
        epoch e: the split's law from a stream keyed by (seed, realisation, split, e)). The
        epoch is shared memory, so DataLoader workers, persistent ones too, draw the same."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise InvalidParameterError(f"epoch: must be an int >= 0, got {epoch!r}")
        self._epoch_cell[0] = int(epoch)
        self._sync_epoch()

    @property
    def epoch(self) -> int:
        """The epoch last set with `set_epoch` (0 until then), in this process or any other."""
        return int(self._epoch_cell[0])

    def _sync_epoch(self) -> None:
        """Draw this process's scales for the shared epoch when they are another epoch's."""
        epoch = self.epoch
        if self.redraw != "per-epoch" or epoch == self._drawn_epoch:
            return
        if epoch == 0:
            self._render_values = self.values
        else:
            self._render_values = self._preset.redraw(
                self.params, self.realisation, self.split, epoch, len(self.labels)
            )
        self._drawn_epoch = epoch
        if self._cache is not None:
            self._cache = [None] * len(self)

    def _sample_values(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sample position, plan value) of each item: a `scales=` grid is scale-major, item
        j = sample j % N at scales[j // N]."""
        self._sync_epoch()
        if self._grid is None:
            return idx, self._render_values[idx]
        n = len(self.labels)
        return idx % n, self._grid[idx // n]

    @property
    def targets(self) -> torch.Tensor:
        """Labels as a tensor, as torchvision's MNIST exposes them."""
        return torch.from_numpy(self.labels)

    def _lazy_samples(self) -> h5py.Dataset:
        # Open once per process (an h5py handle must never cross a fork or a pickle) and keep
        # the dataset object, so its chunk cache survives from item to item.
        if self._h5_samples is None or self._h5_pid != os.getpid():
            self._h5 = h5py.File(self.path, "r", rdcc_nbytes=LAZY_CHUNK_CACHE_BYTES)
            self._h5_samples = self._h5[self._samples_name]
            self._h5_pid = os.getpid()
        return self._h5_samples

    def _stored(self, idx: np.ndarray) -> torch.Tensor:
        """The stored uint8 rows (pixels, or base samples) of the given items, on the device."""
        if self._samples is not None:
            rows = idx if self._rows is None else self._rows[idx]
            # index_select: plain tensor indexing costs ~15x more per batch on the CPU
            return self._samples.index_select(0, torch.from_numpy(rows).to(self._samples.device))
        rows = idx if self.layout == "pixels" else self.source_index[idx]
        stored = torch.from_numpy(read_rows(self.path, self._lazy_samples(), rows))
        return stored.to(self.device) if self.device is not None else stored

    def _checked(self, indices: Any) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        bad = (idx < -n) | (idx >= n)
        if bad.any():
            raise IndexError(f"index {int(idx[bad][0])} out of range for {n} samples")
        return idx % n if n else idx

    def _render(
        self, idx: np.ndarray, positions: np.ndarray, values: np.ndarray
    ) -> list[torch.Tensor]:
        """The items' samples as float32 tensors (C, H, W), from the cache where it has them
        (`positions` and `values`: the items' `_sample_values`)."""
        if self._cache is None:
            return self._render_uncached(positions, values)
        missing = np.array([n for n, i in enumerate(idx) if self._cache[i] is None], dtype=np.int64)
        if len(missing):
            rendered = self._render_uncached(positions[missing], values[missing])
            for n, sample in zip(missing, rendered, strict=True):
                self._cache[idx[n]] = sample
        return [self._cache[i] for i in idx]

    def _render_uncached(self, positions: np.ndarray, values: np.ndarray) -> list[torch.Tensor]:
        stored = self._stored(positions)
        if self.layout == "pixels":
            return list(as_float_samples(stored).unbind(0))
        return render_samples(self._op, self._op_params, stored, values, self.base_transform)

    def render_batch(self, base: torch.Tensor, values: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Render a batch that `render_on="device"` handed over, on the base samples' device:
        (B, h, w) uint8 base samples and their (B,) plan values -> float32 (B, C, H, W) in
        [0, 1] (a multi-resolution batch must hold one resolution)."""
        values = values.cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
        if self._op.by_value and len(np.unique(values)) > 1:
            raise InvalidParameterError(
                "values: a batch must hold one resolution (use ResolutionBatchSampler)"
            )
        return torch.stack(render_samples(self._op, self._op_params, base, values))

    def _item(self, sample: torch.Tensor, position: int, extra: tuple[Any, ...]) -> tuple[Any, ...]:
        target: Any = int(self.labels[position])
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return (sample, target, *extra)

    def _extras(self, values: np.ndarray) -> list[tuple[Any, ...]]:
        """Per item: its plan value (return_scale) and its scale bin (return_scale_bin)."""
        columns: list[list[Any]] = []
        if self.return_scale:
            columns.append(values.tolist())
        if self._bin_origin is not None:
            columns.append(self._preset.scale_bins(self._bin_origin, values).tolist())
        return list(zip(*columns, strict=True)) if columns else [()] * len(values)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: list[int]) -> list[tuple[Any, ...]]:
        """A whole batch with one read and one render per plan value (the DataLoader calls
        this)."""
        idx = self._checked(indices)
        if len(idx) == 0:
            return []
        positions, values = self._sample_values(idx)
        if self.render_on == "device":  # base samples and values, rendered by render_batch
            stored = self._stored(positions).unbind(0)
            return [
                (base, int(self.labels[p]), *extra)
                for base, p, extra in zip(stored, positions, self._extras(values), strict=True)
            ]
        samples = self._render(idx, positions, values)
        extras = self._extras(values)
        return [
            self._item(sample, int(p), extra)
            for sample, p, extra in zip(samples, positions, extras, strict=True)
        ]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_h5"] = None
        state["_h5_samples"] = None
        state["_h5_pid"] = None
        return state

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(path={str(self.path)!r}, split={self.split!r}, "
            f"realisation={self.realisation}, samples={len(self)}, layout={self.layout!r}, "
            f"in_memory={self.in_memory})"
        )


class MNISTScale(ScaleDataset):
    """An MNIST-Scale file (layout pixels): (1 x 28 x 28 image in [0, 1], label) [+ scale].

    The signature of releases before `ScaleDataset` (same positional order)."""

    layouts = ("pixels",)

    def __init__(
        self,
        path: str | Path,
        split: str = "train",
        realisation: int = 0,
        transform: Callable[[torch.Tensor], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        return_scale: bool = False,
        in_memory: bool = True,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__(
            path,
            split,
            realisation,
            transform,
            target_transform,
            return_scale=return_scale,
            in_memory=in_memory,
            device=device,
        )

    @property
    def image_shape(self) -> tuple[int, ...]:
        """The stored image shape, e.g. (28, 28)."""
        return self.base_shape
