"""STL-10 source: decoding of the binary files, rejection of corrupt ones, lookup and download."""

from __future__ import annotations

import json
import socket
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from fake_stl import write_fake_stl10

from scale_datasets.errors import SourceCorruptError, SourceNotFoundError
from scale_datasets.sources import STL10_SOURCES, common, default_root, load_stl10

IMAGE_BYTES = 3 * 96 * 96


def install_fake_torchvision(monkeypatch: pytest.MonkeyPatch, cls: type) -> None:
    """Make `from torchvision import datasets` return a stand-in, so no test touches the network."""
    tv = types.ModuleType("torchvision")
    datasets = types.ModuleType("torchvision.datasets")
    datasets.STL10 = cls  # type: ignore[attr-defined]
    tv.datasets = datasets  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)


def test_sources_list() -> None:
    assert STL10_SOURCES == ("stl10",)


# --- decoding ----------------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["parent", "stl10_binary"])
def test_source_dir_round_trip(tmp_path: Path, given: str) -> None:
    images, labels = write_fake_stl10(tmp_path, n_train=20, n_test=30, seed=3)
    src = load_stl10(source_dir=tmp_path if given == "parent" else tmp_path / "stl10_binary")
    assert src.name == "stl10-dir"
    assert (src.n_train, src.n_test) == (20, 30)
    assert src.images.dtype == np.uint8 and src.images.shape == (50, 3, 96, 96)
    assert src.images.flags.c_contiguous
    assert src.labels.dtype == np.int64 and set(src.labels.tolist()) == set(range(10))
    np.testing.assert_array_equal(src.images, images)
    np.testing.assert_array_equal(src.labels, labels)
    binary = tmp_path / "stl10_binary"
    assert src.files == tuple(
        str(binary / n) for n in ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin")
    )
    assert all(Path(f).is_absolute() for f in src.files)


def test_files_are_column_major(tmp_path: Path) -> None:
    """Byte c*96*96 + col*96 + row of the file is pixel (c, row, col), as torchvision reads it."""
    write_fake_stl10(tmp_path, n_train=1, n_test=1)
    raw = np.zeros(IMAGE_BYTES, dtype=np.uint8)
    raw[0 * 9216 + 5 * 96 + 2] = 200  # channel 0, row 2, column 5
    raw[2 * 9216 + 0 * 96 + 7] = 100  # channel 2, row 7, column 0
    (tmp_path / "stl10_binary" / "train_X.bin").write_bytes(raw.tobytes())
    image = load_stl10(source_dir=tmp_path).images[0]
    assert image[0, 2, 5] == 200 and image[2, 7, 0] == 100
    assert np.count_nonzero(image) == 2


def test_unlabeled_file_is_never_read(tmp_path: Path) -> None:
    images, _ = write_fake_stl10(tmp_path, n_train=10, n_test=10)
    (tmp_path / "stl10_binary" / "unlabeled_X.bin").write_bytes(b"not images")
    np.testing.assert_array_equal(load_stl10(source_dir=tmp_path).images, images)


def test_describe_and_read_only(tmp_path: Path) -> None:
    write_fake_stl10(tmp_path / "a", n_train=10, n_test=20, seed=0)
    write_fake_stl10(tmp_path / "b", n_train=10, n_test=20, seed=1)
    a = load_stl10(source_dir=tmp_path / "a")
    again = load_stl10(source_dir=tmp_path / "a")
    b = load_stl10(source_dir=tmp_path / "b")
    info = json.loads(json.dumps(a.describe()))
    assert info["name"] == "stl10-dir" and info["shape"] == [30, 3, 96, 96]
    assert (info["n_train"], info["n_test"]) == (10, 20)
    assert info["files"] == list(a.files)
    assert info["sha256"] == {"images": a.images_sha256, "labels": a.labels_sha256}
    assert (a.images_sha256, a.labels_sha256) == (again.images_sha256, again.labels_sha256)
    assert a.images_sha256 != b.images_sha256
    with pytest.raises(ValueError):
        a.images[0, 0, 0, 0] = 1
    with pytest.raises(ValueError):
        a.labels[0] = 1


# --- corrupt files -----------------------------------------------------------------------------


def _cut_half_image(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: -IMAGE_BYTES // 2])


def _add_byte(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\0")


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _drop_label(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-1])


def _set_label(value: int):
    def change(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[3] = value
        path.write_bytes(bytes(data))

    return change


@pytest.mark.parametrize(
    ("file", "damage", "expected"),
    [
        ("train_X.bin", _cut_half_image, "is not a whole number of 3x96x96 images"),
        ("test_X.bin", _add_byte, f"{30 * IMAGE_BYTES + 1} bytes is not a whole number"),
        ("test_X.bin", _empty, "0 bytes is not a whole number"),
        ("train_y.bin", _drop_label, "19 labels but train_X.bin holds 20 images"),
        ("test_y.bin", _set_label(0), "label 0 at position 3 is outside 1..10"),
        ("train_y.bin", _set_label(11), "label 11 at position 3 is outside 1..10"),
    ],
)
def test_corrupt_files_raise_one_line_naming_the_file(
    tmp_path: Path, file: str, damage, expected: str
) -> None:
    write_fake_stl10(tmp_path, n_train=20, n_test=30)
    path = tmp_path / "stl10_binary" / file
    damage(path)
    with pytest.raises(SourceCorruptError) as info:
        load_stl10(source_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ") and expected in message


# --- lookup ------------------------------------------------------------------------------------


def test_missing_file_names_folder_and_file(tmp_path: Path) -> None:
    write_fake_stl10(tmp_path)
    (tmp_path / "stl10_binary" / "test_y.bin").unlink()
    with pytest.raises(SourceNotFoundError) as info:
        load_stl10(source_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "stl10_binary") in message and "lacks test_y.bin" in message


def test_missing_source_dir(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="does not exist") as info:
        load_stl10(source_dir=tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)


def test_named_lookup_under_root(tmp_path: Path) -> None:
    images, labels = write_fake_stl10(tmp_path, n_train=10, n_test=10)
    src = load_stl10(root=tmp_path, download=False)
    assert src.name == "stl10"
    np.testing.assert_array_equal(src.images, images)
    np.testing.assert_array_equal(src.labels, labels)


def test_default_root_is_used() -> None:
    images, _ = write_fake_stl10(default_root(), n_train=10, n_test=10)  # conftest isolates it
    np.testing.assert_array_equal(load_stl10(download=False).images, images)


def test_not_found_without_download(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError) as info:
        load_stl10(root=tmp_path, download=False)
    message = str(info.value)
    assert "\n" not in message
    assert f"looked in {tmp_path / 'stl10_binary'} (does not exist)" in message
    assert "--download" in message and "--source-dir DIR holding stl10_binary/" in message


# --- download path (torchvision replaced by stand-ins) -----------------------------------------


def test_download_writes_root_and_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls, written = [], {}

    class Downloads:
        def __init__(self, root: str, split: str, download: bool) -> None:
            calls.append((root, split, download, socket.getdefaulttimeout()))
            written["pool"] = write_fake_stl10(root, n_train=10, n_test=10, seed=5)

    install_fake_torchvision(monkeypatch, Downloads)
    src = load_stl10(root=tmp_path)
    assert calls == [(str(tmp_path), "train", True, common.DOWNLOAD_TIMEOUT_S)]
    assert src.name == "stl10"
    np.testing.assert_array_equal(src.images, written["pool"][0])
    np.testing.assert_array_equal(src.labels, written["pool"][1])


def test_download_failure_becomes_one_line_source_not_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    class Failing:
        def __init__(self, root: str, split: str, download: bool) -> None:
            raise OSError("[Errno 101] Network is unreachable\nwhile fetching stl10_binary.tar.gz")

    install_fake_torchvision(monkeypatch, Failing)
    before = socket.getdefaulttimeout()
    with pytest.raises(SourceNotFoundError) as info:
        load_stl10(root=tmp_path)
    message = str(info.value)
    assert "\n" not in message and "OSError: [Errno 101] Network is unreachable" in message
    assert str(tmp_path / "stl10_binary") in message and "--source-dir" in message
    assert socket.getdefaulttimeout() == before


def test_download_that_leaves_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class Silent:
        def __init__(self, root: str, split: str, download: bool) -> None:
            pass

    install_fake_torchvision(monkeypatch, Silent)
    with pytest.raises(SourceNotFoundError, match="reported stl10 downloaded but"):
        load_stl10(root=tmp_path)
