"""The contract every preset keeps, run over `list_presets()` with one tiny fixture each
(conftest.PRESET_FIXTURES): determinism across runs and worker counts, shards merged = one build,
a realisation alone = the same realisation of a full build, verify catches a flipped byte, the
Dataset reads back what was planned, and bad or unknown options are rejected by name."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from conftest import PRESET_FIXTURES, flip_a_byte
from scale_datasets.cli.app import run

from scale_datasets import ScaleDataset
from scale_datasets.build import build, merge
from scale_datasets.errors import IntegrityError, InvalidParameterError
from scale_datasets.ops.render import get_render_op, render_uint8_block
from scale_datasets.presets import get_preset, list_presets
from scale_datasets.presets.params import fields_of
from scale_datasets.storage.reader import read_info
from scale_datasets.storage.verify import verify_file

NAMES = [p.name for p in list_presets()]


def test_every_preset_has_a_contract_fixture():
    assert sorted(PRESET_FIXTURES) == sorted(NAMES)


@pytest.fixture(scope="module", params=NAMES)
def case(request: pytest.FixtureRequest) -> tuple[str, Path, dict[str, Any]]:
    fixture, options = PRESET_FIXTURES[request.param]
    return request.param, request.getfixturevalue(fixture), dict(options)


@pytest.fixture(scope="module")
def built(case, tmp_path_factory: pytest.TempPathFactory) -> Path:
    name, source_dir, options = case
    out = tmp_path_factory.mktemp("contract") / f"{name}.h5"
    return build(name, out, source_dir=source_dir, workers=1, **options)


def _arrays(path: Path, prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}

    def visit(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset) and name.startswith(prefix):
            out[name] = obj[()]

    with h5py.File(path, "r") as h5:
        h5.visititems(visit)
    return out


def _assert_same_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key


def test_same_content_across_runs_and_worker_counts(case, built, tmp_path):
    name, source_dir, options = case
    again = build(name, tmp_path / "again.h5", source_dir=source_dir, workers=2, **options)
    assert read_info(again).content_sha256 == read_info(built).content_sha256
    _assert_same_arrays(_arrays(built), _arrays(again))


def test_three_shards_merged_equal_one_build(case, built, tmp_path):
    name, source_dir, options = case
    shards = [
        build(
            name, tmp_path / f"s{i}.h5", source_dir=source_dir, workers=1, shard=f"{i}/3", **options
        )
        for i in (1, 2, 3)
    ]
    merged = merge(shards[::-1], tmp_path / "merged.h5")
    assert verify_file(merged).content_sha256 == read_info(built).content_sha256
    _assert_same_arrays(_arrays(built), _arrays(merged))


def test_a_realisation_alone_equals_it_in_a_full_build(case, built, tmp_path):
    name, source_dir, options = case
    options = {k: v for k, v in options.items() if k != "realisations"}
    alone = build(
        name, tmp_path / "alone.h5", source_dir=source_dir, realisation_ids=(1,), **options
    )
    with h5py.File(alone, "r") as h5:
        assert [g for g in h5 if g.startswith("realisation_")] == ["realisation_1"]
    full = _arrays(built)
    _assert_same_arrays(
        {k: v for k, v in full.items() if not k.startswith("realisation_0")}, _arrays(alone)
    )


def test_a_flipped_byte_is_caught_by_verify_and_by_the_dataset(case, built, tmp_path):
    copy = Path(shutil.copy(built, tmp_path / "copy.h5"))
    with h5py.File(copy, "r") as h5:
        samples = "base/images" if "base" in h5 else "realisation_0/train/images"
    flip_a_byte(copy, samples)
    with pytest.raises(IntegrityError, match=samples):
        verify_file(copy)
    with pytest.raises(IntegrityError, match=f"{copy}: dataset {samples}"):
        ScaleDataset(copy, "train", 0)


def test_the_dataset_reads_back_what_was_planned(case, built):
    name, source_dir, options = case
    preset = get_preset(name)
    params = preset.make_params(**options)
    source = preset.load_source(None, source_dir, None, False)
    plan = preset.plan(params, source)
    render = preset.render_spec(params)
    for split in plan.splits:
        realisation, split_name = split.group.split("/")
        ds = ScaleDataset(built, split_name, int(realisation.split("_")[1]), return_scale=True)
        assert len(ds) == len(split)
        assert np.array_equal(ds.labels, split.columns["labels"])
        assert np.array_equal(ds.source_index, split.columns["source_index"])
        values = split.columns[render.column]
        assert np.array_equal(getattr(ds, render.column), values)
        for i in np.linspace(0, len(split) - 1, 5).astype(int):
            sample, label, value = ds[int(i)]
            index = split.columns["source_index"][i : i + 1]
            by_value = get_render_op(render.op).by_value
            expected = render_uint8_block(
                source.images,
                render.op,
                render.params,
                index,
                values[i] if by_value else values[i : i + 1],
            )[0]
            if expected.dtype == np.uint8:  # pixels: stored as rendered, read as x / 255
                expected = expected.astype(np.float32)[None] / np.float32(255)
            assert label == split.columns["labels"][i] and value == values[i]
            np.testing.assert_allclose(sample.numpy(), expected, rtol=0, atol=1e-5)


def _bad_value(info: Any) -> Any:
    if info.choices:
        return "no-such-choice"
    if info.lo is not None:
        return type(info.default)(info.lo - 1)
    return None


def test_bad_and_unknown_options_are_rejected_by_name(case, tmp_path, capsys):
    name, source_dir, options = case
    out = tmp_path / "x.h5"
    with pytest.raises(InvalidParameterError, match=f"{name}: no option frobnicate; options: "):
        build(name, out, source_dir=source_dir, frobnicate=1, **options)
    checked = 0
    for info in fields_of(get_preset(name).params_type):
        bad = None if info.name == "realisations" else _bad_value(info)
        if bad is None:
            continue
        with pytest.raises(InvalidParameterError, match=f"^{info.name}: "):
            build(name, out, source_dir=source_dir, **{**options, info.name: bad})
        flag = "--" + info.name.replace("_", "-")
        args = ["build", name, "--out", str(out), "--source-dir", str(source_dir), flag, str(bad)]
        assert run(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {info.name}: ") and "\n" not in err, err
        checked += 1
    assert checked >= 3
    assert run(["build", name, "--frobnicate", "1"]) == 2
    assert "No such option: --frobnicate" in capsys.readouterr().err
    assert not out.exists() and [p for p in tmp_path.iterdir() if ".tmp-" in p.name] == []
