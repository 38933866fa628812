"""`verify` catches every kind of damage and says which."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import flip_a_byte

from scale_datasets.errors import IntegrityError
from scale_datasets.storage.reader import read_info
from scale_datasets.storage.verify import verify_file


@pytest.fixture
def copy(small_build: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(small_build, tmp_path / "copy.h5"))


def test_an_intact_file_verifies(small_build: Path):
    report = verify_file(small_build)
    assert report.content_sha256 == read_info(small_build).content_sha256
    assert report.datasets == 2 * 3 * 4


def test_a_flipped_byte_in_pixel_data_is_caught(copy: Path):
    flip_a_byte(copy, "realisation_0/test/images")
    with pytest.raises(IntegrityError, match="realisation_0/test/images"):
        verify_file(copy)


def test_a_rewritten_label_is_caught_even_with_valid_checksums(copy: Path):
    with h5py.File(copy, "r+") as h5:
        labels = h5["realisation_1/train/labels"]
        labels[0] = (labels[0] + 1) % 10
    with pytest.raises(IntegrityError, match="realisation_1/train/labels does not match"):
        verify_file(copy)


def test_a_missing_dataset_is_caught(copy: Path):
    with h5py.File(copy, "r+") as h5:
        del h5["realisation_0/val/scales"]
    with pytest.raises(IntegrityError, match="missing dataset realisation_0/val/scales"):
        verify_file(copy)


def test_changed_params_are_caught(copy: Path):
    with h5py.File(copy, "r+") as h5:
        h5.attrs["params"] = h5.attrs["params"].replace('"seed":0', '"seed":1')
    with pytest.raises(IntegrityError, match="content_sha256 mismatch"):
        verify_file(copy)


def test_files_that_are_not_ours_are_rejected(tmp_path: Path):
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(IntegrityError, match="not a readable HDF5 file"):
        verify_file(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["x"] = np.arange(3)
    with pytest.raises(IntegrityError, match="not a scale-datasets file"):
        verify_file(other)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'absent.h5'}: no such file"):
        verify_file(tmp_path / "absent.h5")
    with pytest.raises(FileNotFoundError, match="a directory, not a file"):
        verify_file(tmp_path)
