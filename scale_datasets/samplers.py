"""Batches of one resolution each, for multi-resolution datasets (single process or DDP).

Samples at different resolutions cannot be stacked into one tensor, so a multi-resolution
dataset is read through ``DataLoader(dataset, batch_sampler=ResolutionBatchSampler(...))``.
Unlike the published Fourier-layer sampler, which keeps only full single-resolution batches
(dropping up to 20% of the samples) and searches for each item's resolution, every sample is
used once per epoch and the grouping is done once, up front.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sized
from typing import Protocol

import numpy as np
from torch.utils.data import Sampler

from .checks import int_at_least
from .errors import InvalidParameterError
from .rng import keyed_generator

log = logging.getLogger(__name__)


class MultiResolutionDataset(Sized, Protocol):
    """Anything with ``len()`` and one integer resolution per sample."""

    resolutions: np.ndarray


def _base_seed(generator: np.random.Generator | int | None) -> int:
    """The one seed every epoch's stream derives from (see ``ResolutionBatchSampler``)."""
    if generator is None:
        return 0
    if isinstance(generator, np.random.Generator):
        return int(generator.integers(2**63))
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        if generator < 0:
            raise InvalidParameterError(f"generator: an int seed must be >= 0, got {generator}")
        return int(generator)
    raise InvalidParameterError(
        "generator: need None, an int seed >= 0 or a numpy.random.Generator, got "
        f"{type(generator).__name__}"
    )


class ResolutionBatchSampler(Sampler[list[int]]):
    """Yield batches of dataset indices in which every sample has the same resolution.

    Every sample appears in exactly one batch per epoch (across all ranks); the last batch of
    each resolution may be smaller than ``batch_size`` unless ``drop_last``.

    Args:
        dataset: anything with ``len()`` and a ``.resolutions`` integer array, one per sample.
        batch_size: samples per batch (>= 1).
        shuffle: permute the samples within each resolution and then the order of all batches,
            anew every epoch. Without it batches come in ascending resolution, each holding
            ascending indices.
        generator: None (seed 0), an int seed >= 0, or a ``numpy.random.Generator`` from which
            one 63-bit seed is drawn here. Epoch ``e`` shuffles with
            ``Generator(PCG64(SeedSequence([seed, e])))``, so the order is a function of that
            seed and the epoch alone (any rank, any process, any restart).
        drop_last: drop each resolution's partial batch and then trailing batches until the
            number of batches divides ``num_replicas``, so every rank yields the same number of
            full batches (what DDP needs without ``join()``).
        num_replicas, rank: DDP world size and this process's rank. Every rank builds the same
            epoch's batch list and takes ``batches[rank::num_replicas]``: ranks are disjoint
            and together hold every (kept) sample once. Without ``drop_last`` ranks may yield
            a different number of batches (by one at most), which stalls a plain DDP step:
            train inside ``model.join()`` then, or set ``drop_last=True``.

    Call ``set_epoch(e)`` before each epoch, as with ``DistributedSampler``.
    """

    def __init__(
        self,
        dataset: MultiResolutionDataset,
        batch_size: int,
        shuffle: bool = True,
        generator: np.random.Generator | int | None = None,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        self.batch_size = int_at_least("batch_size", batch_size, 1)
        self.num_replicas = int_at_least("num_replicas", num_replicas, 1)
        self.rank = int_at_least("rank", rank, 0)
        if self.rank >= self.num_replicas:
            raise InvalidParameterError(
                f"rank: need 0 <= rank < num_replicas = {self.num_replicas}, got {rank}"
            )
        try:
            resolutions = np.asarray(dataset.resolutions)
        except AttributeError:
            raise InvalidParameterError(
                f"dataset: {dataset!r} has no resolutions (not a multi-resolution dataset)"
            ) from None
        if resolutions.ndim != 1 or not np.issubdtype(resolutions.dtype, np.integer):
            raise InvalidParameterError(
                "resolutions: need a 1-D integer array, got "
                f"shape {resolutions.shape} dtype {resolutions.dtype}"
            )
        if len(resolutions) != len(dataset):
            raise InvalidParameterError(
                f"resolutions: need one per sample, got {len(resolutions)} for a dataset of "
                f"{len(dataset)}"
            )
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = _base_seed(generator)
        self.epoch = 0
        # Grouped once: a stable sort keeps each group's indices ascending.
        order = np.argsort(resolutions, kind="stable")
        _, starts = np.unique(resolutions[order], return_index=True)
        self._groups = np.split(order, starts[1:]) if len(order) else []
        per_group = [
            len(g) // self.batch_size if self.drop_last else -(-len(g) // self.batch_size)
            for g in self._groups
        ]
        total = sum(per_group)
        self._n_batches = total - total % self.num_replicas if self.drop_last else total
        log.debug(
            "%d samples in %d resolutions -> %d batches per epoch over %d rank(s)",
            len(order),
            len(self._groups),
            self._n_batches,
            self.num_replicas,
        )

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order ``__iter__`` yields next."""
        self.epoch = int_at_least("epoch", epoch, 0)

    def _all_batches(self) -> list[np.ndarray]:
        """The whole epoch's batches, identical on every rank."""
        rng = keyed_generator(self.seed, self.epoch)
        batches: list[np.ndarray] = []
        size = self.batch_size
        for group in self._groups:
            members = rng.permutation(group) if self.shuffle else group
            stop = len(members) - len(members) % size if self.drop_last else len(members)
            batches.extend(members[start : start + size] for start in range(0, stop, size))
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches[: self._n_batches]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._all_batches()[self.rank :: self.num_replicas]:
            yield batch.tolist()

    def __len__(self) -> int:
        return len(range(self.rank, self._n_batches, self.num_replicas))
