"""MNISTScale as a torch Dataset, in memory and lazily, through DataLoader workers."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from scale_datasets import MNIST_SCALE_MEAN, MNIST_SCALE_STD, MNISTScale, RandomScale
from scale_datasets.errors import InvalidParameterError
from scale_datasets.ops.scaling import pil_scale_about_centre


def test_items_follow_torchvision_conventions(small_build: Path):
    ds = MNISTScale(small_build, split="val", realisation=1)
    assert len(ds) == 30
    image, label = ds[0]
    assert image.dtype == torch.float32 and image.shape == (1, 28, 28)
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert isinstance(label, int)
    with h5py.File(small_build, "r") as h5:
        g = h5["realisation_1/val"]
        assert torch.equal(image[0], torch.from_numpy(g["images"][0].astype(np.float32) / 255))
        assert label == g["labels"][0]
        assert np.array_equal(ds.scales, g["scales"][:])
        assert np.array_equal(ds.labels, g["labels"][:])
        assert np.array_equal(ds.source_index, g["source_index"][:])
    assert torch.equal(ds.targets, torch.from_numpy(ds.labels))
    assert ds[-1][1] == ds.labels[-1]
    with pytest.raises(IndexError):
        ds[30]


def test_return_scale_and_transforms(small_build: Path):
    ds = MNISTScale(
        small_build,
        split="test",
        return_scale=True,
        transform=lambda x: x * 2,
        target_transform=lambda y: y + 100,
    )
    image, label, scale = ds[5]
    plain = MNISTScale(small_build, split="test")[5]
    assert torch.equal(image, plain[0] * 2) and label == plain[1] + 100
    assert scale == pytest.approx(float(ds.scales[5])) and 0.3 <= scale <= 1.0


def test_normalisation_constants_are_exported():
    assert (MNIST_SCALE_MEAN, MNIST_SCALE_STD) == (0.0607, 0.2161)


def test_bad_split_or_realisation_names_what_exists(small_build: Path):
    with pytest.raises(InvalidParameterError, match=r"realisation: 7 is not in .* \[0, 1\]"):
        MNISTScale(small_build, realisation=7)
    with pytest.raises(InvalidParameterError, match=r"split: 'holdout' is not in .*test, train"):
        MNISTScale(small_build, split="holdout")


def _batches(ds, **loader_options):
    loader = DataLoader(ds, batch_size=64, shuffle=False, **loader_options)
    return [tuple(t.clone() for t in batch) for batch in loader]


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_lazy_mode_works_in_workers_of_every_start_method(small_build: Path, method: str):
    eager = _batches(MNISTScale(small_build, split="test", return_scale=True))
    lazy = MNISTScale(small_build, split="test", return_scale=True, in_memory=False)
    lazy[0]  # an open handle in the parent must not leak into the workers
    got = _batches(lazy, num_workers=2, multiprocessing_context=method)
    assert len(got) == len(eager)
    for a, b in zip(got, eager, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_random_scale_is_pil_exact_and_reproducible():
    rng_image = np.random.default_rng(0)
    pixels = (rng_image.random((28, 28)) > 0.7).astype(np.uint8) * 255
    image = torch.from_numpy(pixels.astype(np.float32) / 255).unsqueeze(0)
    first = RandomScale(np.random.default_rng(42))
    again = RandomScale(np.random.default_rng(42))
    draws = np.random.default_rng(42).uniform(0.5, 2.0, size=5)
    for scale in draws:
        out = first(image)
        assert torch.equal(out, again(image))
        expected = pil_scale_about_centre(pixels, float(scale)).astype(np.float32) / 255
        assert torch.equal(out[0], torch.from_numpy(expected))
    with pytest.raises(InvalidParameterError, match="min_scale"):
        RandomScale(np.random.default_rng(0), min_scale=2.0, max_scale=1.0)


class _SameImage(torch.utils.data.Dataset):
    """Every item is the same digit, so only the transform's draw tells items apart."""

    def __init__(self, transform):
        pixels = np.zeros((28, 28), np.float32)
        pixels[6:22, 12:16] = 1.0
        self.image = torch.from_numpy(pixels).unsqueeze(0)
        self.transform = transform

    def __len__(self):
        return 8

    def __getitem__(self, index):
        return self.transform(self.image)


def test_random_scale_draws_differ_between_workers_yet_reproduce():
    def run():
        ds = _SameImage(RandomScale(np.random.default_rng(0)))
        loader = DataLoader(
            ds,
            batch_size=1,
            num_workers=2,
            multiprocessing_context="fork",
            generator=torch.Generator().manual_seed(0),
        )
        return [batch[0] for batch in loader]

    first, again = run(), run()
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    # items 0 and 1 are the first draw of worker 0 and of worker 1
    assert not torch.equal(first[0], first[1])


@pytest.mark.parametrize("in_memory", [True, False])
def test_batches_equal_items_for_any_indices(small_build: Path, in_memory: bool):
    ds = MNISTScale(small_build, split="train", return_scale=True, in_memory=in_memory)
    indices = [5, -1, 5, 0, 119, 17, 3, 17]
    batch = ds.__getitems__(indices)
    with h5py.File(small_build, "r") as h5:  # the stored rows, read independently
        group = h5["realisation_0/train"]
        images, labels, scales = group["images"][:], group["labels"][:], group["scales"][:]
    for (image, label, scale), i in zip(batch, indices, strict=True):
        expected = torch.from_numpy(images[i].astype(np.float32) / 255).unsqueeze(0)
        assert torch.equal(image, expected)
        assert (label, scale) == (int(labels[i]), float(scales[i]))
    with pytest.raises(IndexError, match="index 120 out of range for 120 samples"):
        ds.__getitems__([0, 120])


def test_shuffled_lazy_epoch_equals_in_memory(small_build: Path):
    def epoch(ds):
        loader = DataLoader(
            ds, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(3)
        )
        return [b for b in loader]

    eager = epoch(MNISTScale(small_build, split="test", return_scale=True))
    lazy = epoch(MNISTScale(small_build, split="test", return_scale=True, in_memory=False))
    for a, b in zip(eager, lazy, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_mnist_scale_keeps_its_signature_and_refuses_other_layouts(
    small_build, fake_source, tmp_path
):
    from scale_datasets import ScaleDataset
    from scale_datasets.build import build
    from scale_datasets.errors import InvalidParameterError

    positional = MNISTScale(small_build, "train", 1, None, None, True)  # return_scale, as before
    image, _, scale = positional[0]
    assert image.shape == (1, 28, 28) and positional.image_shape == (28, 28)
    assert scale == pytest.approx(positional.scales[0])
    other = build(
        "mnist-multires",
        tmp_path / "mr.h5",
        source_dir=fake_source,
        workers=1,
        n_train=40,
        n_val=10,
        n_test=20,
    )
    with pytest.raises(InvalidParameterError, match=r"layout on-access.*use ScaleDataset"):
        MNISTScale(other)
    assert len(ScaleDataset(other)) == 40
