"""signals-1d: real archive series at many lengths, each an ideal D_n of its own series."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from fake_ts import write_fake_ucr
from scale_datasets.cli.app import run

from scale_datasets import ScaleDataset
from scale_datasets.build import build
from scale_datasets.errors import InvalidParameterError
from scale_datasets.presets import get_preset
from scale_eq.leaderboard.recipes import get_recipe
from scale_eq.leaderboard.records import read_records
from scale_eq.leaderboard.runner import run_grid


def numpy_d_n(x: np.ndarray, n: int) -> np.ndarray:
    """An independent float64 D_n of (C, L) signals: keep |k| <= (min(L, n) - 1) // 2 of the
    DFT (norm "forward": the mean is kept) and invert on n points."""
    length = x.shape[-1]
    spectrum = np.fft.fft(x, axis=-1) / length
    m = (min(length, n) - 1) // 2
    out = np.zeros((*x.shape[:-1], n), dtype=complex)
    out[..., : m + 1] = spectrum[..., : m + 1]
    if m:
        out[..., n - m :] = spectrum[..., length - m :]
    return np.fft.ifft(out * n, axis=-1).real


def _check_items(path: Path, source_dir: Path | None = None, problem: str | None = None) -> int:
    """Every item of every split against numpy D_n of its series; returns items checked."""
    preset = get_preset("signals-1d")
    source = preset.load_source(problem, source_dir, None, False)
    checked = 0
    for split in ("train", "val", "test"):
        ds = ScaleDataset(path, split, return_scale=True)
        for i in range(len(ds)):
            x, label, n = ds[i]
            series = source.images[ds.source_index[i]]
            own = series[:, : int(source.lengths[ds.source_index[i]])]
            assert x.dtype.is_floating_point and tuple(x.shape) == (series.shape[0], n)
            np.testing.assert_allclose(x.numpy(), numpy_d_n(own, n), rtol=0, atol=1e-5)
            assert label == source.labels[ds.source_index[i]]
            checked += 1
    return checked


@pytest.fixture(scope="module")
def fake_build(fake_ucr_source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sig") / "s.h5"
    return build("signals-1d", out, source_dir=fake_ucr_source, workers=1)


def test_every_item_is_the_ideal_resampling_of_its_series(fake_build, fake_ucr_source):
    assert _check_items(fake_build, fake_ucr_source) == 70


def test_default_splits_follow_the_archive_and_are_stratified_and_disjoint(fake_build):
    splits = {s: ScaleDataset(fake_build, s) for s in ("train", "val", "test")}
    # the fake archive: 30 train + 40 test series; val carved from the train part (80 / 20)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [24, 6, 40]
    index = [set(ds.source_index.tolist()) for ds in splits.values()]
    assert not (index[0] & index[1] or index[0] & index[2] or index[1] & index[2])
    for ds in splits.values():
        counts = np.bincount(ds.labels, minlength=2)
        assert abs(int(counts[0]) - int(counts[1])) <= 1  # the pool is balanced
    # lengths: 64 // 4 = 16 .. 64 in equal groups (sizes differ by at most one)
    test = splits["test"]
    assert test.resolutions.min() >= 16 and test.resolutions.max() <= 64
    counts = np.unique(test.resolutions, return_counts=True)[1]
    assert counts.max() - counts.min() <= 1
    x, _ = splits["train"][0]
    assert x.shape[0] == 2  # the fake problem has 2 channels


def test_values_are_the_archives_own_and_statistics_are_recorded(fake_build, fake_ucr_source):
    preset = get_preset("signals-1d")
    source = preset.load_source(None, fake_ucr_source, None, False)
    train = ScaleDataset(fake_build, "train")
    native = source.images[train.source_index]
    np.testing.assert_allclose(train.mean, native.mean(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(train.std, native.std(axis=(0, 2)), rtol=1e-12)
    for i in range(3):  # D_n keeps the mean of every series: no [0, 1] scaling
        x, _ = train[i]
        np.testing.assert_allclose(x.numpy().mean(-1), native[i].mean(-1), atol=1e-5)


_VARIABLE = """@problemName Wobble
@timeStamps false
@univariate true
@equalLength false
@classLabel true a b
@data
{rows}
"""


def _variable_problem(folder: Path) -> Path:
    rng = np.random.default_rng(5)
    for part, n in (("TRAIN", 12), ("TEST", 12)):
        rows = []
        for i in range(n):
            length = int(rng.integers(30, 50))
            values = ",".join(f"{v:.5f}" for v in rng.normal(size=length))
            rows.append(f"{values}:{'ab'[i % 2]}")
        (folder / f"Wobble_{part}.ts").write_text(_VARIABLE.format(rows="\n".join(rows)))
    return folder


def test_variable_length_series_are_resampled_from_their_own_length(tmp_path):
    source_dir = _variable_problem(tmp_path)
    out = build("signals-1d", tmp_path / "w.h5", source="wobble", source_dir=source_dir, workers=1)
    assert _check_items(out, source_dir, "wobble") == 24
    preset = get_preset("signals-1d")
    shortest = int(preset.load_source("wobble", source_dir, None, False).lengths.min())
    assert max(ScaleDataset(out, s).resolutions.max() for s in ("train", "test")) <= shortest
    with pytest.raises(InvalidParameterError, match=f"exceeds the shortest series .*{shortest}"):
        build("signals-1d", tmp_path / "x.h5", source="wobble", source_dir=source_dir,
              max_length=shortest + 1)  # fmt: skip


def test_bad_ts_file_exits_4_naming_file_and_line(tmp_path, capsys):
    folder = write_fake_ucr(tmp_path / "bad", n_train=4, n_test=4, length=8)
    path = folder / "GunPoint_TEST.ts"
    lines = path.read_text().splitlines()
    lines[-2] = lines[-2].replace(",", ",abc,", 1)  # a non-numeric value
    path.write_text("\n".join(lines) + "\n")
    code = run(
        ["build", "signals-1d", "--source-dir", str(folder), "--out", str(tmp_path / "o.h5")]
    )
    assert code == 4
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{path}:{len(lines) - 1}" in err, err
    assert not (tmp_path / "o.h5").exists()


def test_a_missing_problem_says_where_it_looked(tmp_path, capsys):
    code = run(["build", "signals-1d", "--source", "nosuchproblem", "--no-download",
                "--out", str(tmp_path / "o.h5")])  # fmt: skip
    assert code == 4
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nosuchproblem" in err.lower() and "looked in" in err


def test_the_signals_recipe_trains_fourier_1d_and_scores_every_length(tmp_path):
    source = write_fake_ucr(tmp_path / "short", n_train=20, n_test=16, length=32, seed=4)
    data = build("signals-1d", tmp_path / "short.h5", source_dir=source, workers=1)
    recipe = dataclasses.replace(
        get_recipe("signals-1d"),
        epochs=1,
        milestones=(1,),
        eq_images=3,
        consistency_images=4,
        model_options=(("fourier_1d", (("width", 0.125),)),),
    )
    run_grid(recipe, data, tmp_path / "runs")
    (record,) = read_records(tmp_path / "runs")
    m = record["metrics"]
    assert record["model"] == "fourier_1d"
    assert record["config"]["model_options"] == {"width": 0.125}
    fitted = {"in_channels": 1, "num_classes": 2, "max_res": 32, "global_modes": 32}
    assert record["model_options"] == {"width": 0.125, **fitted, "min_length": 8}
    per = m["per_resolution"]
    assert sum(row["n"] for row in per) == m["test_images"] == 16
    c = m["consistency"]
    assert c["images"] == 4 and c["resolutions"] == list(range(8, 33))  # 32 // 4 .. 32
    assert m["equivariance_error"]["value"] < 1e-6  # exact by construction


def _packaged() -> bool:
    return importlib.util.find_spec("aeon") is not None or importlib.util.find_spec("sktime")


@pytest.mark.parametrize(
    ("problem", "sizes", "lengths", "classes"),
    [("gunpoint", [40, 10, 150], (37, 150), 2), ("arrowhead", [29, 7, 175], (62, 251), 3)],
)
def test_real_packaged_problems(tmp_path, problem, sizes, lengths, classes):
    if not _packaged():
        if os.environ.get("CI"):
            pytest.fail("CI must install the aeon wheel (pip install --no-deps aeon)")
        pytest.skip("no packaged UCR copy (pip install --no-deps aeon)")
    out = build("signals-1d", tmp_path / f"{problem}.h5", source=problem, download=False)
    splits = [ScaleDataset(out, s) for s in ("train", "val", "test")]
    assert [len(ds) for ds in splits] == sizes
    assert min(ds.resolutions.min() for ds in splits) == lengths[0]
    assert max(ds.resolutions.max() for ds in splits) == lengths[1]
    assert len(np.unique(np.concatenate([ds.labels for ds in splits]))) == classes
    preset = get_preset("signals-1d")
    source = preset.load_source(problem, None, None, False)
    test = ScaleDataset(out, "test", return_scale=True)
    for i in np.linspace(0, len(test) - 1, 12).astype(int):
        x, _, n = test[int(i)]
        series = source.images[test.source_index[i]]
        np.testing.assert_allclose(x.numpy(), numpy_d_n(series, n), rtol=0, atol=1e-5)


def test_preview_draws_signals_as_line_plots(fake_build, tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "p.png"
    assert run(["preview", str(fake_build), "--out", str(out), "--count", "8"]) == 0
    capsys.readouterr()
    with Image.open(out) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert image.width >= 4 * 96  # four tiles of at least 96 px per row
    # line plots: white (channel 0) and orange (channel 1) pixels, not a clipped strip
    assert (pixels == 255).all(-1).sum() > 100
    assert ((pixels[..., 0] == 255) & (pixels[..., 1] == 170)).sum() > 100
