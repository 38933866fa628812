"""mnist-multires end to end on real data: Debian's Fashion-MNIST, the protocol's sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import debian_fashion_or_skip
from test_multires import numpy_resample
from torch.utils.data import DataLoader

from scale_datasets import ResolutionBatchSampler, ScaleDataset
from scale_datasets.build import build
from scale_datasets.sources import load_mnist_like
from scale_datasets.storage.reader import read_info
from scale_datasets.storage.verify import verify_file

SIZES = {"train": 10_000, "val": 10_000, "test": 50_000}


@pytest.fixture(scope="module")
def real_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    debian_fashion_or_skip()
    out = tmp_path_factory.mktemp("real-multires") / "fashion-multires.h5"
    return build("mnist-multires", out, source="fashion-mnist", download=False)


def test_the_file_verifies_and_holds_the_pool_once(real_build: Path):
    info = read_info(real_build)
    assert verify_file(real_build).content_sha256 == info.content_sha256
    assert info.layout == "on-access" and info.base_shape == (70_000, 28, 28)
    assert {s.name: s.size for s in info.realisations[0]} == SIZES
    assert all(s.value_range == (8, 28) for s in info.realisations[0])


def test_splits_use_the_whole_pool_in_equal_resolution_groups(real_build: Path):
    seen = []
    for split, n in SIZES.items():
        ds = ScaleDataset(real_build, split, in_memory=False)
        assert len(ds) == n
        values, counts = np.unique(ds.resolutions, return_counts=True)
        assert np.array_equal(values, np.arange(8, 29))
        assert counts.max() - counts.min() <= 1
        assert np.array_equal(np.bincount(ds.labels, minlength=10), np.full(10, n // 10))
        seen.append(ds.source_index)
    assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(70_000))


def test_samples_equal_an_independent_resample(real_build: Path):
    source = load_mnist_like("fashion-mnist", download=False)
    ds = ScaleDataset(real_build, "test")
    for i in np.random.default_rng(0).choice(len(ds), 300, replace=False):
        r = int(ds.resolutions[i])
        expected = numpy_resample(source.images[ds.source_index[i]][None], r)
        np.testing.assert_allclose(ds[int(i)][0].numpy(), expected, rtol=0, atol=1e-5)


def test_an_epoch_through_the_sampler_uses_every_sample_once(real_build: Path):
    ds = ScaleDataset(real_build, "train", return_scale=True)
    sampler = ResolutionBatchSampler(ds, batch_size=128, generator=0)
    sampler.set_epoch(3)
    total = 0
    for images, _, resolutions in DataLoader(ds, batch_sampler=sampler):
        assert len(set(resolutions.tolist())) == 1
        assert images.shape[1:] == (1, int(resolutions[0]), int(resolutions[0]))
        total += len(images)
    assert total == len(ds)
