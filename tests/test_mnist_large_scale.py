"""mnist-large-scale (reconstructed): splits, scales, the rendered items against an independent
scipy recipe, the export in the original layout, and its leaderboard recipe."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np
import pytest
from scale_datasets.cli.app import run
from test_large_scale_op import reference

from scale_datasets import ScaleDataset
from scale_datasets.build import build
from scale_datasets.export import large_scale_file_names
from scale_datasets.ops.large_scale import BACKGROUND, TEST_SCALES
from scale_datasets.presets import get_preset
from scale_eq.leaderboard.recipes import get_recipe
from scale_eq.leaderboard.records import read_records
from scale_eq.leaderboard.runner import run_grid

SMALL = dict(n_train=300, n_val=60, workers=1)


@pytest.fixture(scope="module")
def at_two(fake_source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ls") / "ls2.h5"
    return build("mnist-large-scale", out, source_dir=fake_source, train_scale="2", **SMALL)


def _source(fake_source: Path):
    return get_preset("mnist-large-scale").load_source(None, fake_source, None, False)


def test_splits_are_exact_disjoint_and_test_is_the_whole_test_part(at_two, fake_source):
    source = _source(fake_source)
    splits = {s: ScaleDataset(at_two, s, return_scale=True) for s in ("train", "val", "test")}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [300, 60, 100]
    train, val, test = (set(splits[s].source_index.tolist()) for s in ("train", "val", "test"))
    assert not train & val and max(train | val) < source.n_train
    assert test == set(range(source.n_train, len(source.labels)))
    for ds in splits.values():
        assert np.all(ds.scales == np.float32(2.0))  # train, val and test at the training scale
    x, _, _ = splits["train"][0]
    assert tuple(x.shape) == (1, 112, 112) and x.dtype.is_floating_point
    assert float(x[0, 0, 0]) == pytest.approx(BACKGROUND, abs=1e-7)


def test_items_match_an_independent_scipy_recipe_across_the_17_scales(at_two, fake_source):
    source = _source(fake_source)
    grid = ScaleDataset(at_two, "test", scales=TEST_SCALES, return_scale=True)
    n = len(grid.labels)
    assert len(grid) == 17 * n
    rng = np.random.default_rng(0)
    picks = rng.choice(len(grid), 200, replace=False)
    worst = 0.0
    for j in picks.tolist():
        x, label, scale = grid[j]
        assert scale == np.float32(TEST_SCALES[j // n])  # scale-major
        digit = source.images[grid.source_index[j % n]]
        expected = reference(digit, float(np.float32(TEST_SCALES[j // n])))
        worst = max(worst, float(np.abs(x.numpy()[0] - expected).max()))
        assert label == grid.labels[j % n]
    assert worst <= 1e-4, worst


def test_the_mixed_training_set_draws_log_uniform_scales_in_1_to_4(fake_source, tmp_path):
    out = build(
        "mnist-large-scale", tmp_path / "mixed.h5", source_dir=fake_source, train_scale="1-4",
        **SMALL,
    )  # fmt: skip
    val, test = (ScaleDataset(out, split).scales for split in ("val", "test"))
    assert not np.array_equal(val[:50], test[:50])  # each split draws from its own stream
    s = ScaleDataset(out, "train").scales.astype(np.float64)
    assert s.min() >= 1.0 and s.max() <= 4.0 and len(np.unique(s)) == len(s)
    # log-uniform: log4(s) is uniform on [0, 1] (mean 1/2, sd 1/sqrt(12))
    u = np.log(s) / np.log(4.0)
    assert abs(u.mean() - 0.5) < 4 / np.sqrt(12 * len(u))


def test_export_writes_the_original_layout_and_reads_back_equal(at_two, tmp_path, capsys):
    out = tmp_path / "exported"
    assert run(["export", str(at_two), "--format", "mnist-large-scale", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    main, tests = large_scale_file_names("2", (300, 60, 100), 112, TEST_SCALES)
    assert main == "mnist_large_scale_tr300_vl60_te100_outsize112-112_sctr2p000_scte2p000.h5"
    assert tests[0] == "mnist_large_scale_te100_outsize112-112_scte0p500.h5"
    assert tests[-1] == "mnist_large_scale_te100_outsize112-112_scte8p000.h5"
    assert [Path(p).name for p in printed] == [main, *tests]
    with h5py.File(out / main) as h5:
        for split, n in (("train", 300), ("val", 60), ("test", 100)):
            ds = ScaleDataset(at_two, split)
            assert h5[f"x_{split}"].shape == (n, 112, 112, 1)
            assert h5[f"x_{split}"].dtype == np.float32
            for i in (0, n - 1):
                np.testing.assert_array_equal(h5[f"x_{split}"][i, ..., 0], ds[i][0].numpy()[0])
            np.testing.assert_array_equal(h5[f"y_{split}"][:], ds.labels)
    grid = ScaleDataset(at_two, "test", scales=TEST_SCALES)
    with h5py.File(out / tests[3]) as h5:  # the fourth test scale, 2^(-1/4)
        assert h5["x_train"].shape == (1, 112, 112, 1) and h5["x_val"].shape == (1, 112, 112, 1)
        np.testing.assert_array_equal(h5["x_test"][7, ..., 0], grid[3 * 100 + 7][0].numpy()[0])
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]
    # a second export refuses to overwrite, before any work, with one line
    assert run(["export", str(at_two), "--format", "mnist-large-scale", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_export_refuses_other_presets_and_formats(small_build, at_two, tmp_path, capsys):
    args = ["--out", str(tmp_path / "e")]
    assert run(["export", str(small_build), "--format", "mnist-large-scale", *args]) == 2
    assert "exports mnist-large-scale files" in capsys.readouterr().err
    assert run(["export", str(at_two), "--format", "nope", *args]) == 2
    assert "unknown export format 'nope'" in capsys.readouterr().err


def test_the_large_scale_recipe_scores_accuracy_against_the_17_test_scales(at_two, tmp_path):
    recipe = dataclasses.replace(
        get_recipe("mnist-large-scale"),
        epochs=1,
        milestones=(1,),
        models=("cnn_mnist",),
        grid_images=8,
        eq_images=4,
        model_options=(("cnn_mnist", (("channels", (4, 8, 8)),)),),
    )
    run_grid(recipe, at_two, tmp_path)
    (record,) = read_records(tmp_path)
    grid = record["metrics"]["scale_grid"]["per_scale"]
    assert [row["scale"] for row in grid] == pytest.approx(list(TEST_SCALES))
    assert all(row["n"] == 8 for row in grid)
    assert record["metrics"]["test_images"] == 100
