"""The STL-10 source: the labelled train and test splits of torchvision's `stl10_binary` folder.

The pool is train (5,000 images in the real data set) followed by test (8,000), 3x96x96 uint8 each;
the 100,000 unlabelled images are never read. The binary files have no header, so they are checked
by size: each X file must hold a whole number of images, its y file one label byte per image, and
labels must lie in 1..10 (they are shifted to 0..9). Like the MNIST-family sources, the download
goes through torchvision (its md5 table guards the archive) and torch is imported only then.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from scale_datasets.errors import SourceCorruptError, SourceNotFoundError
from scale_datasets.sources.common import (
    SourceData,
    default_root,
    download_with_torchvision,
    find_files,
    pool_source,
)

log = logging.getLogger(__name__)

STL10_SOURCES: tuple[str, ...] = ("stl10",)
SOURCE_DIR_NAME = "stl10-dir"
BINARY_FOLDER = "stl10_binary"
STL10_FILE_NAMES: tuple[str, ...] = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin")
CHANNELS, SIDE = 3, 96
IMAGE_BYTES = CHANNELS * SIDE * SIDE
N_CLASSES = 10
FIX_HINT = f"pass --source-dir DIR holding {BINARY_FOLDER}/"


def _count_images(images_path: Path, labels_path: Path) -> int:
    """The number of images in one split, after checking both files' sizes agree."""
    size = images_path.stat().st_size
    if size == 0 or size % IMAGE_BYTES:
        raise SourceCorruptError(
            f"{images_path}: {size} bytes is not a whole number of "
            f"{CHANNELS}x{SIDE}x{SIDE} images ({IMAGE_BYTES} bytes each)"
        )
    n_labels = labels_path.stat().st_size
    if n_labels != size // IMAGE_BYTES:
        raise SourceCorruptError(
            f"{labels_path}: {n_labels} labels but {images_path.name} holds "
            f"{size // IMAGE_BYTES} images"
        )
    return n_labels


def _read_labels(path: Path) -> np.ndarray:
    """The labels of `path` as int64 0..9 (the file stores 1..10)."""
    labels = np.fromfile(path, dtype=np.uint8)
    bad = np.flatnonzero((labels < 1) | (labels > N_CLASSES))
    if bad.size:
        raise SourceCorruptError(
            f"{path}: label {int(labels[bad[0]])} at position {int(bad[0])} "
            f"is outside 1..{N_CLASSES}"
        )
    return labels.astype(np.int64) - 1


def _read_images(path: Path, count: int) -> np.ndarray:
    """A (count, 3, 96, 96) view of `path` with rows and columns in their usual order."""
    raw = np.fromfile(path, dtype=np.uint8, count=count * IMAGE_BYTES)
    if raw.size != count * IMAGE_BYTES:  # the file shrank after its size was checked
        raise SourceCorruptError(f"{path}: read {raw.size} bytes, expected {count * IMAGE_BYTES}")
    return raw.reshape(count, CHANNELS, SIDE, SIDE).transpose(0, 1, 3, 2)


def _load_files(name: str, paths: tuple[Path, ...]) -> SourceData:
    """Decode train then test into one pool of (N, 3, 96, 96) images and 0..9 labels."""
    counts = [_count_images(paths[0], paths[1]), _count_images(paths[2], paths[3])]
    labels = np.concatenate([_read_labels(paths[1]), _read_labels(paths[3])])
    images = np.empty((sum(counts), CHANNELS, SIDE, SIDE), dtype=np.uint8)
    # The files store each channel column by column, so the last two axes come out swapped.
    images[: counts[0]] = _read_images(paths[0], counts[0])
    images[counts[0] :] = _read_images(paths[2], counts[1])
    log.info("source %s: %d train + %d test images from %s", name, *counts, paths[0].parent)
    files = tuple(str(p.absolute()) for p in paths)
    return pool_source(name, files, images, labels, n_train=counts[0])


def _download(root: Path, tried: str) -> None:
    """Fetch the archive with torchvision into `root` (about 2.6 GB)."""

    def fetch(datasets: Any) -> None:
        # One split is enough: torchvision fetches and extracts the whole archive, test included.
        datasets.STL10(str(root), split="train", download=True)

    fix = f"check the network or {FIX_HINT}"
    download_with_torchvision("stl10", root / BINARY_FOLDER, tried, fix, fetch)


def load_stl10(
    *, source_dir: Path | None = None, root: Path | None = None, download: bool = True
) -> SourceData:
    """Load STL-10's labelled splits as one pool (train then test).

    `source_dir` is a folder holding `stl10_binary/` (or that folder itself) and never downloads.
    Otherwise the files are looked up in `<root>/stl10_binary` (torchvision's layout) and, if
    absent, downloaded there when `download` is true.
    """
    if source_dir is not None:
        folder = Path(source_dir).expanduser()
        if (folder / BINARY_FOLDER).is_dir():
            folder = folder / BINARY_FOLDER
        paths, why = find_files(folder, STL10_FILE_NAMES)
        if paths is None:
            raise SourceNotFoundError(
                f"source folder {folder} {why} (needs {', '.join(STL10_FILE_NAMES)}, "
                f"directly or in {BINARY_FOLDER}/)"
            )
        return _load_files(SOURCE_DIR_NAME, paths)

    root = Path(root).expanduser() if root is not None else default_root()
    folder = root / BINARY_FOLDER
    paths, why = find_files(folder, STL10_FILE_NAMES)
    if paths is not None:
        return _load_files("stl10", paths)
    tried = f"{folder} ({why})"
    if not download:
        raise SourceNotFoundError(
            f"stl10 source not found; looked in {tried}; pass --download or {FIX_HINT}"
        )
    _download(root, tried)
    paths, why = find_files(folder, STL10_FILE_NAMES)
    if paths is None:
        raise SourceNotFoundError(
            f"torchvision reported stl10 downloaded but {folder} {why}; {FIX_HINT}"
        )
    return _load_files("stl10", paths)
