"""The protocol end to end on real data: all 6 realisations from Debian's Fashion-MNIST."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import debian_fashion_or_skip
from scipy import stats

from scale_datasets import MNISTScale
from scale_datasets.build import build
from scale_datasets.ops.scaling import pil_scale_about_centre
from scale_datasets.sources import load_mnist_like
from scale_datasets.storage.reader import read_info
from scale_datasets.storage.verify import verify_file

SIZES = {"train": 10_000, "val": 2_000, "test": 50_000}


@pytest.fixture(scope="module")
def real_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    debian_fashion_or_skip()
    out = tmp_path_factory.mktemp("real") / "fashion.h5"
    return build("mnist-scale", out, source="fashion-mnist", download=False, realisations=6)


@pytest.fixture(scope="module")
def source():
    return load_mnist_like("fashion-mnist", download=False)


def test_the_file_verifies_and_records_its_source(real_build: Path, source):
    info = read_info(real_build)
    assert verify_file(real_build).content_sha256 == info.content_sha256
    assert info.source["name"] == "fashion-mnist"
    assert info.source["sha256"]["images"] == source.images_sha256
    assert info.file_bytes < 100e6
    assert sorted(info.realisations) == [0, 1, 2, 3, 4, 5]


def test_protocol_invariants_hold_in_every_realisation(real_build: Path, source):
    pool_counts = np.bincount(source.labels, minlength=10)
    with h5py.File(real_build, "r") as h5:
        for k in range(6):
            g = {s: h5[f"realisation_{k}/{s}"] for s in SIZES}
            index = {s: g[s]["source_index"][:] for s in SIZES}
            for split, n in SIZES.items():
                assert len(index[split]) == n and g[split]["images"].shape == (n, 28, 28)
                assert len(np.unique(index[split])) == n
                labels = g[split]["labels"][:]
                assert np.array_equal(labels, source.labels[index[split]])
                scales = g[split]["scales"][:]
                assert scales.min() >= np.float32(0.3) and scales.max() <= np.float32(1.0)
                assert stats.kstest(scales, stats.uniform(0.3, 0.7).cdf).pvalue > 1e-3
            assert not set(index["train"]) & set(index["val"])
            assert not set(index["train"]) & set(index["test"])
            assert not set(index["val"]) & set(index["test"])
            trainval = np.bincount(
                source.labels[np.concatenate([index["train"], index["val"]])], minlength=10
            )
            assert np.all(np.abs(trainval - pool_counts * 12_000 / 70_000) < 1)
            test = np.bincount(source.labels[index["test"]], minlength=10)
            assert np.all(np.abs(test - pool_counts * 50_000 / 70_000) < 1)
            for split in ("train", "val"):
                counts = np.bincount(g[split]["labels"][:], minlength=10)
                assert np.all(np.abs(counts - trainval * SIZES[split] / 12_000) < 1)


def test_pixels_equal_pil_on_a_sample_of_real_digits(real_build: Path, source):
    rng = np.random.default_rng(0)
    with h5py.File(real_build, "r") as h5:
        g = h5["realisation_4/test"]
        for i in np.sort(rng.choice(50_000, 300, replace=False)):
            expected = pil_scale_about_centre(
                source.images[g["source_index"][i]], float(g["scales"][i])
            )
            assert np.array_equal(g["images"][i], expected)


def test_the_dataset_serves_the_real_file(real_build: Path):
    train = MNISTScale(real_build, split="train", realisation=5)
    image, label = train[0]
    assert len(train) == 10_000 and image.shape == (1, 28, 28) and 0 <= label <= 9
