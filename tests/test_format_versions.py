"""Files of format version 1 (MNIST-Scale before layouts and render ops were recorded) stay
readable: info, verify, merge's checks and the Dataset treat them as pixels files."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from scale_datasets import MNISTScale, ScaleDataset
from scale_datasets.build import merge
from scale_datasets.errors import IntegrityError
from scale_datasets.storage.hashing import array_bytes, file_digest
from scale_datasets.storage.reader import read_info
from scale_datasets.storage.verify import verify_file


def _as_format_1(path: Path) -> None:
    """Rewrite a pixels file as version 1 wrote it: no layout or render attribute, params
    without `centre`, and the content hash without the layout and render record."""
    with h5py.File(path, "r+") as h5:
        params = json.loads(h5.attrs["params"])
        del params["centre"]
        h5.attrs["params"] = json.dumps(params, sort_keys=True, separators=(",", ":"))
        del h5.attrs["layout"], h5.attrs["render"]
        del h5.attrs["attrs_sha256"]  # newer than version 1
        h5.attrs["format_version"] = 1
        h5.attrs["preset_version"] = 1
        entries = []
        for name in json.loads(h5.attrs["dataset_names"]):
            ds = h5[name]
            shape = list(ds.shape)
            entries.append(
                {"name": name, "dtype": ds.dtype.str, "shape": shape, "sha256": ds.attrs["sha256"]}
            )
        source = json.loads(h5.attrs["source"])
        h5.attrs["content_sha256"] = file_digest(h5.attrs["params"], source["sha256"], entries)


@pytest.fixture
def v1(small_build: Path, tmp_path: Path) -> Path:
    path = Path(shutil.copy(small_build, tmp_path / "v1.h5"))
    _as_format_1(path)
    return path


def test_a_version_1_file_verifies_and_reads_as_pixels(v1: Path, small_build: Path):
    info = read_info(v1)
    assert info.format_version == 1 and info.layout == "pixels"
    assert info.render == {
        "op": "pil_affine_scale",
        "column": "scales",
        "params": {"canvas": 28, "interpolation": "bicubic"},
    }
    assert verify_file(v1).content_sha256 == info.content_sha256
    old, new = MNISTScale(v1, "test", 1, return_scale=True), ScaleDataset(small_build, "test", 1)
    assert np.array_equal(old.scales, new.scales) and len(old) == len(new)
    image, label, scale = old[7]
    assert image.shape == (1, 28, 28) and scale == pytest.approx(float(new.scales[7]))
    assert np.array_equal(image.numpy(), new[7][0].numpy()) and label == new[7][1]


def test_an_edited_version_1_file_still_fails_verify(v1: Path):
    with h5py.File(v1, "r+") as h5:
        h5.attrs["params"] = h5.attrs["params"].replace('"canvas":28', '"canvas":29')
    with pytest.raises(IntegrityError, match="content_sha256 mismatch"):
        verify_file(v1)


def test_an_unknown_version_is_refused(v1: Path):
    with h5py.File(v1, "r+") as h5:
        h5.attrs["format_version"] = 9
    with pytest.raises(IntegrityError, match="format version 9, this package reads 1, 2"):
        read_info(v1)
    with h5py.File(v1, "r+") as h5:
        h5.attrs["format_version"] = "one"
    with pytest.raises(IntegrityError, match="format version one, this package reads 1, 2"):
        read_info(v1)
    with pytest.raises(IntegrityError, match="format version one"):
        ScaleDataset(v1, "train")


def test_version_1_shards_merge_into_the_version_1_file(small_build: Path, tmp_path: Path):
    one = Path(shutil.copy(small_build, tmp_path / "one.h5"))
    _as_format_1(one)
    halves = []
    for i, rows in enumerate(("lo", "hi")):
        half = Path(shutil.copy(one, tmp_path / f"{rows}.h5"))
        _keep_half(half, first=(i == 0))
        halves.append(half)
    merged = merge(halves, tmp_path / "merged.h5")
    info = read_info(merged)
    assert info.format_version == 1
    assert verify_file(merged).content_sha256 == read_info(one).content_sha256


def _keep_half(path: Path, first: bool) -> None:
    """Make a version-1 file one of two shards: each dataset keeps half of its rows."""
    with h5py.File(path, "r+") as h5:
        names = json.loads(h5.attrs["dataset_names"])
        for name in names:
            data = h5[name][()]
            cut = len(data) // 2
            part = data[:cut] if first else data[cut:]
            attrs = dict(h5[name].attrs)
            del h5[name]
            h5.create_dataset(name, data=part)
            for key, value in attrs.items():
                h5[name].attrs[key] = value
            h5[name].attrs["sha256"] = hashlib.sha256(array_bytes(part)).hexdigest()
        h5.attrs["shard"] = json.dumps({"index": 1 if first else 2, "count": 2})
