"""Each recipe family runs end to end on a tiny build and records what the protocol measures;
a file of another preset is refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import PRESET_FIXTURES
from scale_datasets.cli.app import run

from scale_datasets.build import build
from scale_eq.leaderboard.data import open_split
from scale_eq.leaderboard.recipes import get_recipe
from scale_eq.leaderboard.records import read_records
from scale_eq.leaderboard.runner import run_grid


def _tiny(name: str, **changes) -> object:
    return dataclasses.replace(get_recipe(name), epochs=1, milestones=(1,), **changes)


def _tiny_build(preset: str, fake_source: Path, tmp_path_factory) -> Path:
    """The preset's contract-suite build (conftest.PRESET_FIXTURES), one realisation."""
    options = {**PRESET_FIXTURES[preset][1], "realisations": 1}
    out = tmp_path_factory.mktemp(preset) / f"{preset}.h5"
    return build(preset, out, source_dir=fake_source, workers=1, **options)


@pytest.fixture(scope="module")
def multires(fake_source, tmp_path_factory) -> Path:
    return _tiny_build("mnist-multires", fake_source, tmp_path_factory)  # 250 test images


@pytest.fixture(scope="module")
def dynamic(fake_source, tmp_path_factory) -> Path:
    return _tiny_build("dynamic-mnist", fake_source, tmp_path_factory)  # loguniform(1, 3)


def test_multires_recipe_records_resolutions_consistency_and_exact_fourier_error(
    multires, tmp_path
):
    recipe = _tiny(
        "mnist-multires",
        consistency_images=40,
        eq_images=8,
        model_options=(
            ("fourier_mnist", (("width", 0.125),)),
            ("cnn_mnist", (("channels", (8, 16, 24)),)),
        ),
    )
    run_grid(recipe, multires, tmp_path)
    records = {r["model"]: r for r in read_records(tmp_path)}
    assert set(records) == {"fourier_mnist", "cnn_mnist"}
    for r in records.values():
        m = r["metrics"]
        per_res = m["per_resolution"]
        assert [row["resolution"] for row in per_res] == list(range(8, 29))
        assert sum(row["n"] for row in per_res) == m["test_images"] == 250
        c = m["consistency"]
        assert c["images"] == 40 and c["resolutions"] == list(range(8, 29))
        assert c["correct_at_every_resolution"] == c["correct_count"] / 40
        assert c["same_class_at_every_resolution"] == c["same_count"] / 40
        assert c["correct_count"] <= c["same_count"]  # correct everywhere implies same class
        assert r["metrics"]["learned_scales"] == []
    # the Fourier model is scale-equivariant by construction: zero error up to round-off
    assert records["fourier_mnist"]["metrics"]["equivariance_error"]["value"] < 1e-6
    assert records["cnn_mnist"]["metrics"]["equivariance_error"]["value"] > 1e-3
    assert records["cnn_mnist"]["config"]["recipe"]["model_inputs"] == {"cnn_mnist": "resample:28"}


def test_dynamic_recipe_scores_the_scale_grid_and_learned_scales(dynamic, tmp_path):
    recipe = _tiny(
        "dynamic-mnist",
        grid_images=10,
        eq_images=4,
        realisations=(0,),
        model_options=(("sesn_toy", (("canvas", 56), ("pool_size", 14), ("filters", 4))),),
    )
    run_grid(recipe, dynamic, tmp_path)
    (r,) = read_records(tmp_path)
    grid = r["metrics"]["scale_grid"]
    assert grid["images"] == 10
    assert [row["scale"] for row in grid["per_scale"]] == pytest.approx(
        np.logspace(-1, 3.5, 45, base=2)
    )
    assert all(row["n"] == 10 for row in grid["per_scale"])
    (scales,) = r["metrics"]["learned_scales"]
    assert len(scales["scales"]) == 3 and scales["isr"] > 1
    assert sum(b["n"] for b in r["metrics"]["per_scale"]) == 100  # every scale in [1, 3] binned
    assert r["data"]["params"]["distribution"] == "loguniform(1.0, 3.0)"


def test_random_scale_augmentation_is_keyed_per_epoch(small_build):
    recipe = get_recipe("mnist-scale-plus")
    train = open_split(small_build, "train", 0, recipe, torch.device("cpu"), seed=0)
    plain = open_split(small_build, "train", 0, get_recipe("mnist-scale"), torch.device("cpu"), 0)
    a = [b.x for b in train.batches(0)]
    again = [b.x for b in train.batches(0)]
    other = [b.x for b in train.batches(1)]
    unaugmented = [b.x for b in plain.batches(0)]
    assert all(torch.equal(x, y) for x, y in zip(a, again, strict=True))  # same epoch, same draw
    assert not torch.equal(torch.cat(a), torch.cat(other))
    assert not torch.equal(torch.cat(a), torch.cat(unaugmented))
    # same batch order as the plain recipe (the augmentation draws from its own stream)
    assert [b.index.tolist() for b in train.batches(0)] == [
        b.index.tolist() for b in plain.batches(0)
    ]


def test_batches_are_normalised_with_the_files_statistics(small_build):
    train = open_split(small_build, "train", 0, get_recipe("mnist-scale"), torch.device("cpu"), 0)
    batch = next(iter(train.batches(0)))
    raw = torch.stack([train.ds[int(i)][0] for i in batch.index])
    expected = (raw - train.ds.mean) / train.ds.std
    torch.testing.assert_close(batch.x, expected, rtol=0, atol=1e-6)
    assert batch.y.tolist() == [int(train.ds.labels[i]) for i in batch.index]
    seen = np.concatenate([b.index for b in train.batches(0)])
    assert sorted(seen.tolist()) == list(range(len(train)))  # every sample once per epoch


@pytest.mark.parametrize("name", ["mnist-scale", "mnist-multires"])
def test_data_parallel_ranks_split_the_single_process_batches(small_build, multires, name):
    path = small_build if name == "mnist-scale" else multires
    recipe = dataclasses.replace(get_recipe(name), batch_size=16)
    one = open_split(path, "train", 0, recipe, torch.device("cpu"), seed=3)
    ranks = []
    for rank in range(3):
        part = open_split(path, "train", 0, recipe, torch.device("cpu"), seed=3)
        part.replicas = (3, rank)
        ranks.append(part.batch_indices(2))
    whole = [b for b in one.batch_indices(2) if len(b) >= 6]
    assert [len(r) for r in ranks] == [len(whole)] * 3  # same number of steps on every rank
    for k, batch in enumerate(whole):
        assert np.concatenate([r[k] for r in ranks]).tolist() == batch.tolist()
    test = open_split(path, "test", 0, recipe, torch.device("cpu"), seed=3)
    shares = []
    for rank in range(3):
        test.replicas = (3, rank)
        shares += [i for b in test.batch_indices(0) for i in b.tolist()]
    assert sorted(shares) == list(range(len(test)))  # evaluation: every sample exactly once


def test_bastings_model_trains_its_shared_scales_at_their_rate():
    from scale_eq import create_model
    from scale_eq.leaderboard.runner import _optimiser

    recipe = get_recipe("mnist-scale")
    assert "sesn_mnist_isr_basting" in recipe.models
    model = create_model("sesn_mnist_isr_basting")
    groups = _optimiser(recipe, "sesn_mnist_isr_basting", model).param_groups
    assert [(g["name"], g["lr"]) for g in groups] == [("weights", 0.01), ("scales", 0.005)]
    assert sum(p.numel() for p in groups[1]["params"]) == 2  # one shared set
    isr = _optimiser(recipe, "sesn_mnist_isr", create_model("sesn_mnist_isr")).param_groups
    assert isr[1]["lr"] == 0.01
    published = {p.model: p.test_error for p in recipe.published}
    assert published["sesn_mnist_isr_basting"] == 1.72


def test_a_file_of_another_preset_is_refused(multires, tmp_path, capsys):
    out = tmp_path / "runs"
    assert run(["bench", "run", "smoke", "--data", str(multires), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "is a mnist-multires file; recipe smoke needs a mnist-scale file" in err
    assert run(["bench", "run", "nope", "--data", str(multires), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "recipe: unknown recipe 'nope'" in err, err
    assert not out.exists()
