"""Sources: IDX decoding, rejection of corrupt files, lookup order, download failure handling."""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from fake_idx import idx_bytes, write_fake_mnist, write_idx_images, write_idx_labels

from scale_datasets.errors import InvalidParameterError, SourceCorruptError, SourceNotFoundError
from scale_datasets.sources import (
    MNIST_LIKE_SOURCES,
    common,
    default_root,
    load_mnist_like,
    mnist_like,
    read_idx_images,
    read_idx_labels,
)

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def no_system_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the host's Debian copy out of lookup tests unless a test puts it back."""
    monkeypatch.setattr(mnist_like, "SYSTEM_DIRS", {})


def install_fake_torchvision(monkeypatch: pytest.MonkeyPatch, name: str, cls: type) -> None:
    """Make `from torchvision import datasets` return a stand-in, so no test touches the network."""
    tv = types.ModuleType("torchvision")
    datasets = types.ModuleType("torchvision.datasets")
    setattr(datasets, name, cls)
    tv.datasets = datasets  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)


# --- IDX round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip_is_exact(tmp_path: Path, gz: bool) -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7, dtype=np.uint8)
    got_images = read_idx_images(write_idx_images(tmp_path / "im", images, gz=gz))
    got_labels = read_idx_labels(write_idx_labels(tmp_path / "lb", labels, gz=gz))
    assert got_images.dtype == np.uint8 and got_images.shape == (7, 5, 3)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    images = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
    (tmp_path / "gz-without-suffix").write_bytes(gzip.compress(idx_bytes(images)))
    (tmp_path / "plain-with-suffix.gz").write_bytes(idx_bytes(images))
    np.testing.assert_array_equal(read_idx_images(tmp_path / "gz-without-suffix"), images)
    np.testing.assert_array_equal(read_idx_images(tmp_path / "plain-with-suffix.gz"), images)


@pytest.mark.parametrize("gz", [False, True])
def test_source_dir_loads_pool_train_then_test(tmp_path: Path, gz: bool) -> None:
    images, labels = write_fake_mnist(tmp_path, n_train=30, n_test=10, gz=gz, seed=3)
    src = load_mnist_like(source_dir=tmp_path)
    assert src.name == "idx-dir"
    assert (src.n_train, src.n_test) == (30, 10)
    assert src.labels.dtype == np.int64
    np.testing.assert_array_equal(src.images, images)
    np.testing.assert_array_equal(src.labels, labels)
    assert all(Path(f).is_absolute() and Path(f).parent == tmp_path for f in src.files)
    assert [Path(f).name.endswith(".gz") for f in src.files] == [gz] * 4


def test_uncompressed_file_preferred_over_gz(tmp_path: Path) -> None:
    images, _ = write_fake_mnist(tmp_path, n_train=10, n_test=10, seed=0)
    other = np.zeros((10, 28, 28), dtype=np.uint8)
    write_idx_images(tmp_path / "train-images-idx3-ubyte.gz", other, gz=True)
    src = load_mnist_like(source_dir=tmp_path)
    np.testing.assert_array_equal(src.images[:10], images[:10])
    assert not src.files[0].endswith(".gz")


def test_describe_is_json_and_hash_follows_content(tmp_path: Path) -> None:
    write_fake_mnist(tmp_path / "a", n_train=20, n_test=10, seed=0)
    write_fake_mnist(tmp_path / "b", n_train=20, n_test=10, seed=1)
    a = load_mnist_like(source_dir=tmp_path / "a")
    again = load_mnist_like(source_dir=tmp_path / "a")
    b = load_mnist_like(source_dir=tmp_path / "b")
    info = json.loads(json.dumps(a.describe()))
    assert info["shape"] == [30, 28, 28] and (info["n_train"], info["n_test"]) == (20, 10)
    assert info["files"] == list(a.files)
    assert info["sha256"] == {"images": a.images_sha256, "labels": a.labels_sha256}
    assert (a.images_sha256, a.labels_sha256) == (again.images_sha256, again.labels_sha256)
    assert a.images_sha256 != b.images_sha256
    # Read-only pool: nobody can change pixels behind the recorded hash.
    with pytest.raises(ValueError):
        a.images[0, 0, 0] = 1


# --- real data -------------------------------------------------------------------------------


@pytest.mark.skipif(
    not DEBIAN_FASHION.is_dir(),
    reason=f"{DEBIAN_FASHION} absent (apt-get install dataset-fashion-mnist)",
)
def test_debian_fashion_mnist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(mnist_like, "SYSTEM_DIRS", {"fashion-mnist": (DEBIAN_FASHION,)})
    src = load_mnist_like("fashion-mnist", root=tmp_path, download=False)
    assert src.name == "fashion-mnist"
    assert src.images.shape == (70_000, 28, 28) and src.images.dtype == np.uint8
    assert (src.n_train, src.n_test) == (60_000, 10_000)
    assert np.bincount(src.labels).tolist() == [7_000] * 10
    # Known first labels of each split: train and test are in the right order.
    assert src.labels[:5].tolist() == [9, 0, 0, 3, 0]
    assert src.labels[60_000:60_005].tolist() == [9, 2, 1, 1, 6]
    again = load_mnist_like("fashion-mnist", root=tmp_path, download=False)
    assert (again.images_sha256, again.labels_sha256) == (src.images_sha256, src.labels_sha256)


# --- corrupt files ---------------------------------------------------------------------------


def _corrupt(folder: Path, case: str) -> Path:
    """Write a fake folder, then damage it as `case` says; returns the file that is at fault."""
    write_fake_mnist(folder, n_train=20, n_test=10, gz=True)
    target = folder / "train-images-idx3-ubyte.gz"
    plain = gzip.decompress(target.read_bytes())
    if case == "wrong magic":
        target.write_bytes(gzip.compress(b"\x00\x00\x09\x03" + plain[4:]))
    elif case == "wrong ndim":
        target.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + plain[4:]))
    elif case == "truncated payload":
        target.write_bytes(gzip.compress(plain[:-5]))
    elif case == "oversized payload":
        target.write_bytes(gzip.compress(plain + b"\x00"))
    elif case == "truncated gzip":
        target.write_bytes(target.read_bytes()[:-40])
    elif case == "garbage gzip":
        target.write_bytes(b"\x1f\x8b" + bytes(range(200)))
    elif case == "count mismatch":
        target = folder / "t10k-labels-idx1-ubyte.gz"
        write_idx_labels(target, np.zeros(9, dtype=np.uint8), gz=True)
    elif case == "labels out of range":
        target = folder / "train-labels-idx1-ubyte.gz"
        write_idx_labels(target, np.full(20, 10, dtype=np.uint8), gz=True)
    elif case == "image sizes differ":
        target = folder / "t10k-images-idx3-ubyte.gz"
        write_idx_images(target, np.zeros((10, 32, 32), dtype=np.uint8), gz=True)
    return target


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("wrong magic", "type code 0x09"),
        ("wrong ndim", "1 dimensions, need 3"),
        ("truncated payload", "need 15680 bytes, file holds 15675"),
        ("oversized payload", "oversized"),
        ("truncated gzip", "gzip"),
        ("garbage gzip", "gzip"),
        ("count mismatch", "10 images"),
        ("labels out of range", "found 10"),
        ("image sizes differ", "(32, 32)"),
    ],
)
def test_corrupt_source_is_reported_with_its_file(tmp_path: Path, case: str, words: str) -> None:
    bad = _corrupt(tmp_path, case)
    with pytest.raises(SourceCorruptError) as info:
        load_mnist_like(source_dir=tmp_path)
    message = str(info.value)
    assert str(bad) in message and words in message
    assert info.value.exit_code == 4 and "\n" not in message


def test_labels_file_is_not_an_images_file(tmp_path: Path) -> None:
    path = write_idx_labels(tmp_path / "labels", np.arange(10, dtype=np.uint8))
    with pytest.raises(SourceCorruptError, match="expected 0x00000803"):
        read_idx_images(path)


def test_not_an_idx_file_at_all(tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(SourceCorruptError, match="no IDX header"):
        read_idx_images(tmp_path / "photo.png")


def test_missing_idx_file_is_source_not_found(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="nothing-here"):
        read_idx_labels(tmp_path / "nothing-here")


def test_file_too_short_for_header(tmp_path: Path) -> None:
    (tmp_path / "tiny").write_bytes(b"\x00\x00")
    with pytest.raises(SourceCorruptError, match="too short"):
        read_idx_labels(tmp_path / "tiny")


# --- missing sources and names ---------------------------------------------------------------


def test_source_dir_missing_file_names_it(tmp_path: Path) -> None:
    write_fake_mnist(tmp_path, n_train=10, n_test=10)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(SourceNotFoundError, match="lacks t10k-labels-idx1-ubyte") as info:
        load_mnist_like(source_dir=tmp_path)
    assert str(tmp_path) in str(info.value) and info.value.exit_code == 4


def test_source_dir_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="does not exist") as info:
        load_mnist_like(source_dir=tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)


def test_unknown_source_lists_valid_names() -> None:
    with pytest.raises(InvalidParameterError) as info:
        load_mnist_like("cifar", download=False)
    assert all(name in str(info.value) for name in MNIST_LIKE_SOURCES)


# --- lookup order ----------------------------------------------------------------------------


def test_root_beats_system_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root_images, _ = write_fake_mnist(tmp_path / "root" / "FashionMNIST" / "raw", seed=1)
    write_fake_mnist(tmp_path / "debian", seed=2, gz=True)
    monkeypatch.setattr(mnist_like, "SYSTEM_DIRS", {"fashion-mnist": (tmp_path / "debian",)})
    src = load_mnist_like("fashion-mnist", root=tmp_path / "root", download=False)
    np.testing.assert_array_equal(src.images, root_images)


def test_system_dir_used_when_root_empty_or_incomplete(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    raw = tmp_path / "root" / "FashionMNIST" / "raw"
    write_idx_labels(raw / "train-labels-idx1-ubyte", np.zeros(3, dtype=np.uint8))
    debian_images, _ = write_fake_mnist(tmp_path / "debian", seed=2, gz=True)
    monkeypatch.setattr(mnist_like, "SYSTEM_DIRS", {"fashion-mnist": (tmp_path / "debian",)})
    src = load_mnist_like("fashion-mnist", root=tmp_path / "root", download=False)
    assert src.name == "fashion-mnist"
    np.testing.assert_array_equal(src.images, debian_images)


def test_not_found_without_download_names_folders_tried(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(mnist_like, "SYSTEM_DIRS", {"fashion-mnist": (tmp_path / "debian",)})
    with pytest.raises(SourceNotFoundError) as info:
        load_mnist_like("fashion-mnist", root=tmp_path / "root", download=False)
    message = str(info.value)
    assert str(tmp_path / "root" / "FashionMNIST" / "raw") in message
    assert str(tmp_path / "debian") in message
    assert "--download" in message and "apt-get install dataset-fashion-mnist" in message
    assert "\n" not in message


def test_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SCALE_DATASETS_HOME", str(tmp_path / "home"))
    assert default_root() == tmp_path / "home"
    monkeypatch.delenv("SCALE_DATASETS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_root() == tmp_path / ".cache" / "scale-datasets"


def test_default_root_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    images, _ = write_fake_mnist(tmp_path / "KMNIST" / "raw", seed=4)
    monkeypatch.setenv("SCALE_DATASETS_HOME", str(tmp_path))
    np.testing.assert_array_equal(load_mnist_like("kmnist", download=False).images, images)


# --- download path (torchvision replaced by stand-ins) ---------------------------------------


def test_download_failure_becomes_one_line_source_not_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen_timeouts = []

    class Failing:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            seen_timeouts.append(socket.getdefaulttimeout())
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried x, got: y\n")

    install_fake_torchvision(monkeypatch, "MNIST", Failing)
    before = socket.getdefaulttimeout()
    with pytest.raises(SourceNotFoundError) as info:
        load_mnist_like("mnist", root=tmp_path)
    message = str(info.value)
    assert "\n" not in message and "Error downloading" in message
    assert str(tmp_path / "MNIST" / "raw") in message and "--source-dir" in message
    assert seen_timeouts == [common.DOWNLOAD_TIMEOUT_S]
    assert socket.getdefaulttimeout() == before


def test_download_success_reads_torchvision_raw_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    written = {}

    class Downloads:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            assert download
            if not written:
                written["pool"] = write_fake_mnist(Path(root) / "FashionMNIST" / "raw", gz=True)

    install_fake_torchvision(monkeypatch, "FashionMNIST", Downloads)
    src = load_mnist_like("fashion-mnist", root=tmp_path)
    np.testing.assert_array_equal(src.images, written["pool"][0])
    np.testing.assert_array_equal(src.labels, written["pool"][1])


def test_importing_sources_does_not_import_torch() -> None:
    code = "import sys, scale_datasets.sources; sys.exit('torch' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0
