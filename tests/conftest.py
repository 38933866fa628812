"""Shared fixtures: tiny fake MNIST folders and small builds made from them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fake_idx import write_fake_mnist
from fake_stl import write_fake_stl10
from fake_ts import write_fake_ucr

from scale_datasets.build import build

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")

# Split sizes that fit the fake pool of 400 + 100 images.
SMALL = dict(n_train=120, n_val=30, n_test=250)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """No test reads or writes the user's real cache."""
    monkeypatch.setenv("SCALE_DATASETS_HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture(scope="session")
def fake_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fake-mnist")
    write_fake_mnist(folder, n_train=400, n_test=100, gz=True, seed=1)
    return folder


@pytest.fixture(scope="session")
def fake_stl_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding stl10_binary/ with 30 train + 30 test fake images."""
    folder = tmp_path_factory.mktemp("fake-stl")
    write_fake_stl10(folder, n_train=30, n_test=30, seed=2)
    return folder


@pytest.fixture(scope="session")
def fake_ucr_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding GunPoint_TRAIN.ts and GunPoint_TEST.ts: 2 channels, 30 + 40 series of
    64 values, 2 classes (found as the preset's default source, gunpoint)."""
    return write_fake_ucr(tmp_path_factory.mktemp("fake-ucr"), channels=2, seed=3)


# One tiny fixture per preset, which the contract suite (test_preset_contract.py) builds:
# the fixture source (a conftest fixture name) and the build options. Every registered preset
# must have an entry; a new preset adds one here.
PRESET_FIXTURES: dict[str, tuple[str, dict]] = {
    "mnist-scale": ("fake_source", dict(realisations=2, **SMALL)),
    "dynamic-mnist": (
        "fake_source",
        dict(
            realisations=2,
            n_train=60,
            n_val=20,
            n_test=100,
            canvas=56,
            distribution="loguniform(1, 3)",
        ),
    ),
    "mnist-multires": ("fake_source", dict(realisations=2, n_train=120, n_val=30, n_test=250)),
    "signals-1d": ("fake_ucr_source", dict(realisations=2, min_length=20)),
    "mnist-large-scale": (
        "fake_source",
        dict(realisations=2, n_train=300, n_val=60, canvas=56, train_scale="1-4"),
    ),
    # 90..97 keeps the 97 grid (the 96 x 96 image put on a 97 x 97 grid) in a tiny build.
    "stl10-scale": (
        "fake_stl_source",
        dict(realisations=2, n_train=24, n_val=8, n_test=16, min_resolution=90, max_resolution=97),
    ),
}


@pytest.fixture(scope="session")
def small_build(fake_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-realisation build of the fake source, made once and shared read-only."""
    out = tmp_path_factory.mktemp("small") / "small.h5"
    return build("mnist-scale", out, source_dir=fake_source, realisations=2, workers=1, **SMALL)


def flip_a_byte(path: Path, dataset: str, chunk: int = 0) -> None:
    """Flip one bit in the middle of a stored (compressed) chunk of a dataset."""
    import h5py

    with h5py.File(path, "r") as h5:
        info = h5[dataset].id.get_chunk_info(chunk)
        offset = info.byte_offset + info.size // 2
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x10]))


def debian_fashion_or_skip() -> Path:
    if not DEBIAN_FASHION.is_dir():
        if os.environ.get("CI"):
            pytest.fail(
                f"{DEBIAN_FASHION} is missing: .ci/run must apt-get install dataset-fashion-mnist"
            )
        pytest.skip(f"{DEBIAN_FASHION} not installed (apt-get install dataset-fashion-mnist)")
    return DEBIAN_FASHION
