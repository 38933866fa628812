"""The multi-resolution presets (mnist-multires, stl10-scale): samples equal an independent
float64 numpy D_r, exact stratified disjoint splits, equal resolution groups, the materialised
layout, `resolution=`, `base_transform`, integrity checks on load, and the STL-10 CLI errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import PRESET_FIXTURES, flip_a_byte
from fake_stl import write_fake_stl10
from scale_datasets.cli.app import run
from torch.utils.data import DataLoader

from scale_datasets import ResolutionBatchSampler, ScaleDataset
from scale_datasets.build import build, merge
from scale_datasets.errors import IntegrityError, InvalidParameterError
from scale_datasets.presets import get_preset
from scale_datasets.storage.reader import read_info
from scale_datasets.storage.verify import verify_file

PRESETS = ("mnist-multires", "stl10-scale")


def numpy_resample(image: np.ndarray, r: int) -> np.ndarray:
    """D_r written independently: full complex FFT in float64 (norm "forward"), keep
    |k| <= (min(N, r) - 1) // 2 per axis, inverse on the r x r grid (real part)."""
    n = image.shape[-1]
    spectrum = np.fft.fft2(image.astype(np.float64) / 255.0, norm="forward")
    m = (min(n, r) - 1) // 2
    k = np.arange(-m, m + 1)
    out = np.zeros((*image.shape[:-2], r, r), dtype=np.complex128)
    out[..., (k % r)[:, None], (k % r)[None, :]] = spectrum[..., (k % n)[:, None], (k % n)[None, :]]
    return np.fft.ifft2(out, norm="forward").real


@pytest.fixture(scope="module", params=PRESETS)
def case(request: pytest.FixtureRequest):
    fixture, options = PRESET_FIXTURES[request.param]
    source_dir = request.getfixturevalue(fixture)
    preset = get_preset(request.param)
    source = preset.load_source(None, source_dir, None, False)
    return request.param, source_dir, dict(options), source


@pytest.fixture(scope="module")
def built(case, tmp_path_factory: pytest.TempPathFactory) -> Path:
    name, source_dir, options, _ = case
    out = tmp_path_factory.mktemp("multires") / f"{name}.h5"
    return build(name, out, source_dir=source_dir, workers=1, **options)


def _channels(base: np.ndarray) -> np.ndarray:
    return base[None] if base.ndim == 2 else base


def test_every_item_equals_an_independent_float64_resample(case, built):
    source = case[3]
    for realisation in (0, 1):
        for split in ("train", "val", "test"):
            ds = ScaleDataset(built, split, realisation)
            for i in range(len(ds)):
                sample, label = ds[i]
                base = _channels(source.images[ds.source_index[i]])
                r = int(ds.resolutions[i])
                assert sample.dtype == torch.float32 and sample.shape == (base.shape[0], r, r)
                assert label == source.labels[ds.source_index[i]]
                expected = numpy_resample(base, r)
                np.testing.assert_allclose(sample.numpy(), expected, rtol=0, atol=1e-5)


def test_splits_are_exact_stratified_and_disjoint(case, built):
    _, _, options, source = case
    pool_counts = np.bincount(source.labels, minlength=10)
    for realisation in (0, 1):
        seen = []
        for split in ("train", "val", "test"):
            ds = ScaleDataset(built, split, realisation)
            assert len(ds) == options[f"n_{split}"]
            counts = np.bincount(ds.labels, minlength=10)
            share = pool_counts * len(ds) / len(source.labels)
            assert np.all(np.abs(counts - share) < 1), (split, counts, share)
            seen.append(ds.source_index)
        everything = np.concatenate(seen)
        assert len(np.unique(everything)) == len(everything)


def test_every_resolution_appears_in_groups_that_differ_by_at_most_one(case, built):
    name, _, options, _ = case
    wanted = get_preset(name).make_params(**options).resolutions
    for split in ("train", "val", "test"):
        resolutions = ScaleDataset(built, split, 0).resolutions
        values, counts = np.unique(resolutions, return_counts=True)
        if len(resolutions) >= len(wanted):
            assert np.array_equal(values, wanted)
        assert counts.max() - counts.min() <= 1 and counts.sum() == len(resolutions)
        assert set(values) <= set(wanted)


def test_resolution_override_and_return_scale(case, built):
    _, _, _, source = case
    ds = ScaleDataset(built, "test", 0, resolution=11, return_scale=True)
    assert np.all(ds.resolutions == 11)
    sample, _, r = ds[3]
    assert r == 11 and sample.shape[-2:] == (11, 11)
    expected = numpy_resample(_channels(source.images[ds.source_index[3]]), 11)
    np.testing.assert_allclose(sample.numpy(), expected, rtol=0, atol=1e-5)
    with pytest.raises(InvalidParameterError, match=r"resolution: must be in 1\.\.4096"):
        ScaleDataset(built, "test", 0, resolution=0)


def test_base_transform_runs_on_the_base_sample_before_rendering(case, built):
    _, _, _, source = case
    flipped = ScaleDataset(built, "train", 0, base_transform=lambda x: torch.flip(x, dims=[-1]))
    for i in (0, 5):
        base = _channels(source.images[flipped.source_index[i]])[..., ::-1]
        expected = numpy_resample(base, int(flipped.resolutions[i]))
        np.testing.assert_allclose(flipped[i][0].numpy(), expected, rtol=0, atol=1e-5)


def test_a_mixed_batch_and_the_sampler_give_the_planned_samples(case, built):
    ds = ScaleDataset(built, "test", 0, cache=True)
    lazy = ScaleDataset(built, "test", 0, in_memory=False)
    mixed = ds.__getitems__([0, 1, 2, 3, 2])
    for (sample, _), i in zip(mixed, [0, 1, 2, 3, 2], strict=True):
        assert torch.equal(sample, lazy[i][0])
        assert torch.equal(sample, ds[i][0])  # cached
    sampler = ResolutionBatchSampler(ds, batch_size=4, generator=np.random.default_rng(0))
    seen = []
    for images, labels in DataLoader(ds, batch_sampler=sampler):
        assert images.ndim == 4 and images.shape[-1] == images.shape[-2]
        seen.append(len(labels))
    assert sum(seen) == len(ds)


def test_materialised_groups_hold_the_rendered_samples(case, built, tmp_path):
    name, source_dir, options, _ = case
    path = build(
        name, tmp_path / "m.h5", source_dir=source_dir, materialise=True, workers=1, **options
    )
    assert read_info(path).materialised
    ds = ScaleDataset(path, "val", 1)
    with h5py.File(path, "r") as h5:
        index = h5["realisation_1/val/index"][()]
        for i in range(len(ds)):
            r, row = index[i]
            assert r == ds.resolutions[i]
            stored = h5[f"realisation_1/val/r{r}/images"][row]
            assert stored.dtype == np.float32
            np.testing.assert_allclose(stored, ds[i][0].numpy(), rtol=0, atol=1e-5)
    shards = [
        build(
            name,
            tmp_path / f"{i}.h5",
            source_dir=source_dir,
            materialise=True,
            shard=f"{i}/2",
            **options,
        )
        for i in (1, 2)
    ]
    merged = merge(shards, tmp_path / "merged.h5")
    assert verify_file(merged).content_sha256 == read_info(path).content_sha256


def test_a_rewritten_label_fails_loading_with_the_file_and_dataset_named(built, tmp_path):
    copy = Path(shutil.copy(built, tmp_path / "copy.h5"))
    with h5py.File(copy, "r+") as h5:  # chunk checksums stay valid: only the sha256 can tell
        labels = h5["realisation_0/train/labels"]
        labels[0] = (labels[0] + 1) % 10
    message = f"{copy}: dataset realisation_0/train/labels does not match its recorded sha256"
    with pytest.raises(IntegrityError, match=message):
        ScaleDataset(copy, "train", 0)
    with pytest.raises(IntegrityError, match=message):
        ScaleDataset(copy, "train", 0, in_memory=False)  # small columns are checked on open
    ScaleDataset(copy, "test", 0)  # other splits still load


def test_lazy_mode_names_the_dataset_on_a_failed_chunk_checksum(built, tmp_path):
    copy = Path(shutil.copy(built, tmp_path / "copy.h5"))
    ds = ScaleDataset(copy, "train", 0, in_memory=False)
    with h5py.File(copy, "r") as h5:
        rows = h5["base/images"].chunks[0]
    flip_a_byte(copy, "base/images")
    victim = int(np.flatnonzero(ds.source_index < rows)[0])
    with pytest.raises(IntegrityError, match=f"{copy}: dataset base/images is unreadable"):
        ds[victim]


def test_options_of_pixels_files_are_refused(small_build):
    with pytest.raises(InvalidParameterError, match="base_transform, resolution"):
        ScaleDataset(small_build, "train", 0, resolution=14)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d.joinpath("train_X.bin").write_bytes(b"\0" * 27649), "not a whole number"),
        (lambda d: d.joinpath("test_y.bin").write_bytes(b"\1" * 29), "labels but"),
        (lambda d: d.joinpath("train_y.bin").write_bytes(b"\0" * 30), "outside 1..10"),
        (lambda d: d.joinpath("train_y.bin").write_bytes(b"\x0b" * 30), "outside 1..10"),
        (lambda d: d.joinpath("test_X.bin").unlink(), "lacks test_X.bin"),
    ],
)
def test_bad_stl_files_exit_4_with_one_line(tmp_path, capsys, damage, message):
    write_fake_stl10(tmp_path / "stl", n_train=30, n_test=30)
    damage(tmp_path / "stl" / "stl10_binary")
    args = ["build", "stl10-scale", "--source-dir", str(tmp_path / "stl")]
    assert run([*args, "--out", str(tmp_path / "x.h5"), "--n-train", "10"]) == 4
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith("error: ")
    assert not (tmp_path / "x.h5").exists()


def test_lazy_files_render_in_spawned_dataloader_workers(built):
    eager = ScaleDataset(built, "test", 0)
    lazy = ScaleDataset(built, "test", 0, in_memory=False)
    lazy[0]  # an open handle in the parent must not leak into the workers
    batches = list(ResolutionBatchSampler(eager, batch_size=8, shuffle=False))
    loader = DataLoader(lazy, batch_sampler=batches, num_workers=2, multiprocessing_context="spawn")
    for (images, labels), batch in zip(loader, batches, strict=True):
        expected = torch.stack([eager[i][0] for i in batch])
        torch.testing.assert_close(images, expected, rtol=0, atol=1e-6)
        assert labels.tolist() == eager.labels[batch].tolist()


def test_info_verify_and_preview_on_the_command_line(case, built, tmp_path, capsys):
    from PIL import Image

    assert run(["info", str(built)]) == 0
    out = capsys.readouterr().out
    assert "layout: on-access; render: fourier_resample over resolutions" in out
    assert "realisation 1: train" in out
    assert run(["verify", str(built)]) == 0
    assert capsys.readouterr().out.startswith(f"OK {built}")
    png = tmp_path / "grid.png"
    assert run(["preview", str(built), "--out", str(png), "--split", "test", "--count", "9"]) == 0
    with Image.open(png) as image:
        assert image.mode == ("L" if case[0] == "mnist-multires" else "RGB")
        assert image.width > 0 and image.height > 0


def test_materialised_shards_with_empty_splits_and_slices_merge_to_one_build(fake_source, tmp_path):
    """n_val = 0 and 5 shards of tiny splits leave some shards without rows of a split or of a
    resolution group: their datasets are empty, and the merge still equals one build."""
    options = dict(n_train=12, n_val=0, n_test=6, min_resolution=5, max_resolution=9)
    one = build(
        "mnist-multires",
        tmp_path / "one.h5",
        source_dir=fake_source,
        workers=1,
        materialise=True,
        **options,
    )
    shards = [
        build(
            "mnist-multires",
            tmp_path / f"{i}.h5",
            source_dir=fake_source,
            workers=1,
            materialise=True,
            shard=f"{i}/5",
            **options,
        )
        for i in range(1, 6)
    ]
    merged = merge(shards[::-1], tmp_path / "merged.h5")
    assert verify_file(merged).content_sha256 == read_info(one).content_sha256
    assert len(ScaleDataset(merged, "val")) == 0


def test_an_on_access_shard_is_refused_until_merged(fake_source, tmp_path):
    shard = build(
        "mnist-multires",
        tmp_path / "s.h5",
        source_dir=fake_source,
        workers=1,
        shard="2/2",
        n_train=40,
        n_val=10,
        n_test=20,
    )
    with pytest.raises(InvalidParameterError, match="one shard of an on-access build"):
        ScaleDataset(shard, "train")


def test_an_empty_batch_is_an_empty_list(built):
    assert ScaleDataset(built, "test").__getitems__([]) == []
    assert ScaleDataset(built, "test", in_memory=False).__getitems__([]) == []


def test_a_missing_plan_column_is_an_integrity_error(built, tmp_path):
    copy = Path(shutil.copy(built, tmp_path / "copy.h5"))
    with h5py.File(copy, "r+") as h5:
        del h5["realisation_0/test/resolutions"]
    with pytest.raises(IntegrityError, match="dataset realisation_0/test/resolutions is missing"):
        ScaleDataset(copy, "test")


def test_the_sampler_refuses_a_dataset_without_resolutions(small_build):
    with pytest.raises(InvalidParameterError, match="has no resolutions"):
        ResolutionBatchSampler(ScaleDataset(small_build, "test"), batch_size=4)
