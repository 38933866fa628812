"""The runner's data: a recipe's splits as device batches.

Every split is a `ScaleDataset` held on the training device (``device=``): an in-memory split is
one tensor there and a batch is an index into it; on-access files render each batch there
(dynamic-mnist on the GPU with the torch renderer, multi-resolution files with one batched
FFT). Batches are normalised with the file's own statistics (``ds.mean``, ``ds.std``) and
adapted to what the model takes (``resample:N``). Every random choice (batch order,
augmentation) comes from a generator keyed by (seed, realisation, epoch, purpose), so an epoch
is the same whether the run started fresh or resumed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scale_datasets import ScaleDataset
from scale_datasets.errors import InvalidParameterError
from scale_datasets.ops.fourier import resample_1d, resample_batch
from scale_datasets.ops.pixels import to_unit_float
from scale_datasets.ops.torch_scaling import scale_on_canvas_torch
from scale_datasets.rng import keyed_generator
from scale_datasets.samplers import ResolutionBatchSampler
from scale_datasets.storage.reader import read_info
from scale_datasets.transforms import RandomCircularShift, stl10_train_transforms

from .recipes import Recipe

__all__ = [
    "Batch",
    "SplitData",
    "adapt_input",
    "open_split",
    "resample_to",
    "torch_seed",
]

# Purposes of the runner's keyed streams.
ORDER, TORCH, AUGMENT = 1, 2, 3
RANDOM_SCALE = (0.5, 2.0)  # the "+" augmentation's law (PROTOCOLS.md section 1)


def torch_seed(seed: int, realisation: int, epoch: int, rank: int = 0) -> int:
    """The torch seed of an epoch (dropout, initialisation at epoch 0); each rank of a
    data-parallel run draws its own dropout."""
    key = (seed, realisation, epoch, TORCH) + ((rank,) if rank else ())
    return int(keyed_generator(*key).integers(2**62))


@dataclass
class Batch:
    x: torch.Tensor  # normalised float32 (B, C, H, W) on the device
    y: torch.Tensor  # int64 (B,)
    values: np.ndarray  # each item's scale or resolution
    index: np.ndarray  # dataset positions


def resample_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Ideal D_size of a batch of images (B, C, H, W) or signals (B, C, L)."""
    if x.shape[-1] == size:
        return x
    return resample_1d(x, size) if x.dim() == 3 else resample_batch(x, size)


def adapt_input(x: torch.Tensor, how: str) -> torch.Tensor:
    """``native``: as is; ``resample:N``: ideal D_N to N x N (up-scaling smaller inputs)."""
    if how == "native":
        return x
    return resample_to(x, int(how.split(":", 1)[1]))


class SplitData:
    """One split of one realisation, on a device, as batches for a recipe (the dataset must
    return each item's scale or resolution: ``return_scale=True``)."""

    def __init__(
        self, ds: ScaleDataset, recipe: Recipe, device: torch.device, train: bool, seed: int
    ) -> None:
        self.ds = ds
        self.recipe = recipe
        self.device = device
        self.train = train
        self.seed = seed
        limit = recipe.limit(ds.split)
        self.n = len(ds) if limit is None else min(limit, len(ds))
        if ds.mean is None or ds.std is None:
            raise InvalidParameterError(f"data: {ds.path} records no normalisation statistics")
        self.mean = torch.tensor(np.atleast_1d(ds.mean), dtype=torch.float32, device=device)
        self.std = torch.tensor(np.atleast_1d(ds.std), dtype=torch.float32, device=device)
        self.multires = ds.plan_column == "resolutions"
        self.replicas = (1, 0)  # (world size, rank) of a data-parallel run

    def __len__(self) -> int:
        return self.n

    @functools.cached_property
    def protocol_sizes(self) -> list[int]:
        """Every resolution (length) of the file's protocol: the whole range its plan spans
        over the realisation's splits, as the file records it (a small test split need not
        hold every one)."""
        splits = read_info(self.ds.path).realisations[self.ds.realisation]
        ranges = [s.value_range for s in splits if s.value_range is not None]
        lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
        return list(range(int(lo), int(hi) + 1))

    def batch_indices(self, epoch: int) -> list[np.ndarray]:
        """The epoch's batches of this rank: shuffled (train) or in order; one resolution per
        batch for multi-resolution files.

        Data-parallel (``replicas``): the single-process run's batches are split into near
        equal per-rank parts, so the global batches are the recipe's (a global batch too small
        to give every rank two samples, which BatchNorm needs, is dropped); evaluation batches
        are dealt out whole, so every sample is scored exactly once over the ranks.
        """
        world, rank = self.replicas
        batches = self._global_batches(epoch)
        if world == 1:
            return batches
        if not self.train:
            return batches[rank::world]
        return [np.array_split(b, world)[rank] for b in batches if len(b) >= 2 * world]

    def _global_batches(self, epoch: int) -> list[np.ndarray]:
        bs = self.recipe.batch_size
        if self.multires:
            sampler = ResolutionBatchSampler(
                _Limited(self.ds, self.n),
                bs,
                shuffle=self.train,
                generator=int(
                    keyed_generator(self.seed, self.ds.realisation, ORDER).integers(2**62)
                ),
            )
            sampler.set_epoch(epoch)
            return [np.asarray(b, dtype=np.int64) for b in sampler]
        if self.train:
            order = keyed_generator(self.seed, self.ds.realisation, epoch, ORDER).permutation(
                self.n
            )
        else:
            order = np.arange(self.n)
        return [order[i : i + bs] for i in range(0, self.n, bs)]

    def batches(self, epoch: int, model_input: str = "native") -> Iterator[Batch]:
        """The epoch's batches, rendered, augmented (train), normalised and adapted."""
        scale_draws = None
        if self.train:
            rng = keyed_generator(self.seed, self.ds.realisation, epoch, AUGMENT)
            if self.recipe.augment == "random-scale":
                scale_draws = rng.uniform(*RANDOM_SCALE, size=self.n)
            else:  # keyed per epoch, so a resumed run draws what a fresh one did
                self.ds.base_transform = base_augmentation(self.recipe, rng)
        for idx in self.batch_indices(epoch):
            yield self.load(idx, model_input, scale_draws)

    def load(
        self, idx: np.ndarray, model_input: str = "native", scale_draws: np.ndarray | None = None
    ) -> Batch:
        items = self.ds.__getitems__(idx.tolist())
        x = torch.stack([it[0] for it in items]).to(self.device)
        y = torch.tensor([it[1] for it in items], dtype=torch.int64, device=self.device)
        values = np.array([it[2] for it in items], dtype=np.float64)
        if scale_draws is not None:
            x = _random_scale(x, scale_draws[idx])
        per_channel = (1, -1, *([1] * (x.dim() - 2)))  # images (B, C, H, W), signals (B, C, L)
        x = (x - self.mean.reshape(per_channel)) / self.std.reshape(per_channel)
        return Batch(adapt_input(x, model_input), y, values, idx)


class _Limited:
    """The first n samples of a multi-resolution dataset, for the sampler."""

    def __init__(self, ds: ScaleDataset, n: int) -> None:
        self.resolutions = ds.resolutions[:n]

    def __len__(self) -> int:
        return len(self.resolutions)


def _random_scale(x: torch.Tensor, scales: np.ndarray) -> torch.Tensor:
    """The "+" augmentation on a batch: each 28 x 28 digit rescaled about its centre on its own
    canvas (the torch renderer, within one grey level of the PIL-exact one)."""
    b, c, h, w = x.shape
    pixels = torch.round(x * 255).to(torch.uint8).reshape(b * c, h, w)
    s = torch.from_numpy(np.repeat(scales, c)).to(x.device)
    out = scale_on_canvas_torch(pixels, s, canvas=(h, w))
    return to_unit_float(out).reshape(b, c, h, w)


def open_split(
    path: Path,
    split: str,
    realisation: int,
    recipe: Recipe,
    device: torch.device,
    seed: int,
    **options: Any,
) -> SplitData:
    """A split of the file as the recipe trains (``split == "train"``) or evaluates on it;
    ``options`` go to the `ScaleDataset` (an evaluation grid's ``scales=``, ``resolution=``)."""
    ds = ScaleDataset(path, split, realisation, return_scale=True, device=device, **options)
    return SplitData(ds, recipe, device, split == "train", seed)


def base_augmentation(recipe: Recipe, rng: np.random.Generator) -> Callable | None:
    """The recipe's per-sample augmentation before a multi-resolution render, or None."""
    if recipe.augment == "circular-shift":
        return RandomCircularShift(rng)
    if recipe.augment == "stl10":
        return stl10_train_transforms(rng)
    return None
