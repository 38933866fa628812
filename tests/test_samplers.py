"""ResolutionBatchSampler: one resolution per batch, every sample once, the same on every rank."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from scale_datasets.errors import InvalidParameterError
from scale_datasets.samplers import ResolutionBatchSampler


class _Stub(torch.utils.data.Dataset):
    """Sample i is an r x r image filled with i (r its resolution), with label i."""

    def __init__(self, resolutions) -> None:
        self.resolutions = np.asarray(resolutions, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.resolutions)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        r = int(self.resolutions[i])
        return torch.full((1, r, r), float(i)), i


def _epoch(ds, *, num_replicas=1, epoch=0, **kwargs) -> list[list[list[int]]]:
    """Batches of every rank for one epoch."""
    out = []
    for rank in range(num_replicas):
        sampler = ResolutionBatchSampler(ds, num_replicas=num_replicas, rank=rank, **kwargs)
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(sampler) == len(batches)
        out.append(batches)
    return out


def _resolution_sets():
    """Up to 150 samples over 1 to 6 resolutions (8, 11, 14, ...)."""
    return st.tuples(st.integers(0, 150), st.integers(1, 6), st.integers(0, 2**32 - 1)).map(
        lambda t: np.random.default_rng(t[2]).choice(np.arange(8, 8 + 3 * t[1], 3), size=t[0])
    )


@settings(max_examples=150, deadline=None)
@given(
    resolutions=_resolution_sets(),
    batch_size=st.integers(1, 12),
    num_replicas=st.sampled_from([1, 3]),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**63 - 1),
    epoch=st.integers(0, 5),
)
def test_every_sample_once_one_resolution_per_batch(
    resolutions, batch_size, num_replicas, shuffle, seed, epoch
):
    ds = _Stub(resolutions)
    ranks = _epoch(
        ds,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=seed,
        num_replicas=num_replicas,
        epoch=epoch,
    )
    every = [i for batches in ranks for batch in batches for i in batch]
    assert sorted(every) == list(range(len(ds)))  # all ranks together: each sample exactly once
    for batches in ranks:
        for batch in batches:
            assert 1 <= len(batch) <= batch_size
            assert len(set(resolutions[batch].tolist())) == 1
    # Only each resolution's last batch may be short, so the count is the minimum possible.
    _, per_resolution = np.unique(resolutions, return_counts=True)
    assert sum(map(len, ranks)) == sum(-(-per_resolution // batch_size))
    assert max(map(len, ranks)) - min(map(len, ranks)) <= 1


@settings(max_examples=150, deadline=None)
@given(
    resolutions=_resolution_sets(),
    batch_size=st.integers(1, 12),
    num_replicas=st.integers(1, 4),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**63 - 1),
)
def test_drop_last_gives_full_batches_and_equal_counts_on_every_rank(
    resolutions, batch_size, num_replicas, shuffle, seed
):
    ds = _Stub(resolutions)
    ranks = _epoch(
        ds,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=seed,
        num_replicas=num_replicas,
        drop_last=True,
    )
    _, per_resolution = np.unique(resolutions, return_counts=True)
    full = int(sum(per_resolution // batch_size))
    assert [len(b) for b in ranks] == [full // num_replicas] * num_replicas
    every = [i for batches in ranks for batch in batches for i in batch]
    assert len(every) == len(set(every)) == (full - full % num_replicas) * batch_size
    for batches in ranks:
        for batch in batches:
            assert len(batch) == batch_size
            assert len(set(resolutions[batch].tolist())) == 1


def test_unshuffled_order_is_ascending_resolution_then_index():
    ds = _Stub([28, 8, 28, 8, 16, 8, 28])
    assert _epoch(ds, batch_size=2, shuffle=False) == [[[1, 3], [5], [4], [0, 2], [6]]]
    assert _epoch(ds, batch_size=2, shuffle=False, drop_last=True) == [[[1, 3], [0, 2]]]
    # Two ranks: rank r takes batches r, r + 2, ...; drop_last also trims the list to even.
    assert _epoch(ds, batch_size=2, shuffle=False, num_replicas=2) == [
        [[1, 3], [4], [6]],
        [[5], [0, 2]],
    ]
    assert _epoch(ds, batch_size=1, shuffle=False, num_replicas=2, drop_last=True) == [
        [[1], [5], [0]],
        [[3], [4], [2]],
    ]


def test_order_is_a_function_of_seed_and_epoch():
    ds = _Stub(np.repeat([8, 12, 16, 20], 50))
    first = _epoch(ds, batch_size=8, generator=11, epoch=3)
    assert first == _epoch(ds, batch_size=8, generator=11, epoch=3)
    assert first != _epoch(ds, batch_size=8, generator=11, epoch=4)
    assert first != _epoch(ds, batch_size=8, generator=12, epoch=3)
    # A Generator contributes one 63-bit seed drawn at construction; None means seed 0.
    seed = int(np.random.default_rng(5).integers(2**63))
    assert _epoch(ds, batch_size=8, generator=np.random.default_rng(5)) == _epoch(
        ds, batch_size=8, generator=seed
    )
    assert _epoch(ds, batch_size=8) == _epoch(ds, batch_size=8, generator=0)
    # Shuffling mixes resolutions in the batch order and the members within a resolution.
    (batches,) = first
    firsts = [ds.resolutions[b[0]] for b in batches]
    assert firsts != sorted(firsts)
    assert any(b != sorted(b) for b in batches)


def test_set_epoch_changes_what_the_same_sampler_yields():
    ds = _Stub(np.repeat([8, 12], 40))
    sampler = ResolutionBatchSampler(ds, batch_size=4, generator=1)
    epoch0 = list(sampler)
    assert list(sampler) == epoch0  # iterating again repeats the epoch
    sampler.set_epoch(1)
    assert list(sampler) != epoch0
    sampler.set_epoch(0)
    assert list(sampler) == epoch0


def test_works_as_a_dataloader_batch_sampler():
    ds = _Stub(np.random.default_rng(0).choice([5, 7, 9], size=53))
    sampler = ResolutionBatchSampler(ds, batch_size=6, generator=3)
    loader = DataLoader(ds, batch_sampler=sampler, num_workers=0)
    seen = []
    for images, labels in loader:  # default collate stacks: one resolution per batch
        r = int(ds.resolutions[labels[0]])
        assert images.shape == (len(labels), 1, r, r)
        assert torch.equal(images[:, 0, 0, 0], labels.float())
        seen.extend(labels.tolist())
    assert sorted(seen) == list(range(53))
    assert len(loader) == len(sampler)


class _BadResolutions:
    def __init__(self, resolutions, n) -> None:
        self.resolutions = resolutions
        self.n = n

    def __len__(self) -> int:
        return self.n


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, "batch_size: need an int >= 1"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"num_replicas": 0}, "num_replicas: need an int >= 1"),
        ({"num_replicas": 2, "rank": 2}, r"rank: need 0 <= rank < num_replicas = 2"),
        ({"rank": -1}, "rank"),
        ({"generator": -3}, "generator: an int seed must be >= 0"),
        ({"generator": "seed"}, "generator"),
        ({"dataset": _BadResolutions(np.arange(4), 5)}, "resolutions: need one per sample"),
        ({"dataset": _BadResolutions(np.ones(5), 5)}, "resolutions: need a 1-D integer array"),
    ],
)
def test_bad_arguments_raise_invalid_parameter(kwargs, match):
    args = {"dataset": _Stub([8, 8, 12, 12, 16]), "batch_size": 2, **kwargs}
    with pytest.raises(InvalidParameterError, match=match):
        ResolutionBatchSampler(**args)


def test_set_epoch_rejects_negative_epochs():
    sampler = ResolutionBatchSampler(_Stub([8]), batch_size=1)
    with pytest.raises(InvalidParameterError, match="epoch"):
        sampler.set_epoch(-1)
