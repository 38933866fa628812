"""The MNIST-family sources (mnist, fashion-mnist, kmnist, or any folder of the four IDX files).

A source is the pool every preset samples from: train images followed by test images, with
labels, plus the sha256 of the decoded arrays so a built file records exactly what it came from.
Files are looked up where users already have them (torchvision's layout under a root, Debian's
dataset package) before anything is downloaded, and the download goes through torchvision so its
md5 table guards the archives. torch is imported only when a download actually happens, because
importing it costs seconds that `list`/`info` style commands should not pay.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scale_datasets.errors import InvalidParameterError, SourceCorruptError, SourceNotFoundError
from scale_datasets.sources.common import (
    SourceData,
    default_root,
    download_with_torchvision,
    find_files,
    pool_source,
)
from scale_datasets.sources.idx import read_idx_images, read_idx_labels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MnistLikeSpec:
    """Where torchvision keeps a named source: its dataset class and folder under the root."""

    torchvision_class: str
    folder: str


MNIST_LIKE_REGISTRY: dict[str, MnistLikeSpec] = {
    "mnist": MnistLikeSpec("MNIST", "MNIST"),
    "fashion-mnist": MnistLikeSpec("FashionMNIST", "FashionMNIST"),
    "kmnist": MnistLikeSpec("KMNIST", "KMNIST"),
}
MNIST_LIKE_SOURCES: tuple[str, ...] = tuple(MNIST_LIKE_REGISTRY)

# Folders that system packages install sources into, searched after the root. A module constant so
# tests can point it at a temporary folder.
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}
# The package that fills SYSTEM_DIRS, for the "how to fix it" part of error messages.
SYSTEM_PACKAGES: dict[str, str] = {"fashion-mnist": "dataset-fashion-mnist"}

SOURCE_DIR_NAME = "idx-dir"
TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
IDX_FILE_NAMES: tuple[str, ...] = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
N_CLASSES = 10


def _resolve_file(folder: Path, name: str) -> Path | None:
    """`folder/name`, else `folder/name.gz`: torchvision leaves both, the plain one reads faster."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_split(split: str, images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one split and check it is self-consistent (counts match, labels are digits 0..9)."""
    images = read_idx_images(images_path)
    labels = read_idx_labels(labels_path)
    if len(images) != len(labels):
        raise SourceCorruptError(
            f"{split} split mismatch: {len(images)} images in {images_path} but "
            f"{len(labels)} labels in {labels_path}"
        )
    if labels.size and int(labels.max()) >= N_CLASSES:
        raise SourceCorruptError(
            f"labels in {labels_path} must lie in 0..{N_CLASSES - 1}, found {int(labels.max())}"
        )
    return images, labels


def _load_files(name: str, paths: tuple[Path, ...]) -> SourceData:
    """Decode the four files (train images, train labels, test images, test labels) into a pool."""
    train_images, train_labels = _read_split("train", paths[0], paths[1])
    test_images, test_labels = _read_split("test", paths[2], paths[3])
    if train_images.shape[1:] != test_images.shape[1:]:
        raise SourceCorruptError(
            f"image sizes differ: {train_images.shape[1:]} in {paths[0]} but "
            f"{test_images.shape[1:]} in {paths[2]}"
        )
    images = np.concatenate([train_images, test_images])
    labels = np.concatenate([train_labels, test_labels])
    log.info(
        "source %s: %d train + %d test images of %dx%d from %s",
        name,
        len(train_images),
        len(test_images),
        *images.shape[1:],
        paths[0].parent,
    )
    files = tuple(str(p.absolute()) for p in paths)
    return pool_source(name, files, images, labels, n_train=len(train_images))


def _fix_hint(source: str, *, offer_download: bool, first: str | None = None) -> str:
    """The ways out for a user, joined as "a, b or c"."""
    options = [first] if first else []
    if offer_download:
        options.append("pass --download")
    options.append("pass --source-dir DIR holding the four MNIST-format IDX files")
    if source in SYSTEM_PACKAGES:
        options.append(f"run `apt-get install {SYSTEM_PACKAGES[source]}`")
    else:  # the same protocol builds offline from Debian's Fashion-MNIST
        options.append(
            "use --source fashion-mnist, which builds offline from Debian's package "
            "(apt-get install dataset-fashion-mnist)"
        )
    if len(options) == 1:
        return options[0]
    return ", ".join(options[:-1]) + " or " + options[-1]


def _download(source: str, spec: MnistLikeSpec, root: Path, tried: str) -> None:
    """Fetch both splits with torchvision into `root`."""

    def fetch(datasets: Any) -> None:
        dataset_class = getattr(datasets, spec.torchvision_class)
        for train in (True, False):
            dataset_class(str(root), train=train, download=True)

    fix = _fix_hint(source, offer_download=False, first="check the network")
    download_with_torchvision(source, root / spec.folder / "raw", tried, fix, fetch)


def load_mnist_like(
    source: str = "mnist",
    *,
    source_dir: Path | None = None,
    root: Path | None = None,
    download: bool = True,
) -> SourceData:
    """Load a named MNIST-family source, or the IDX files of `source_dir`, as one pool.

    A named source is looked up in `<root>/<Folder>/raw` (torchvision's layout), then in the
    system folders of SYSTEM_DIRS, and only then downloaded (if `download`). `source_dir` skips
    all of that and never downloads: it is how users bring their own copies.
    """
    if source not in MNIST_LIKE_REGISTRY:
        raise InvalidParameterError(
            f"source must be one of {', '.join(MNIST_LIKE_SOURCES)}; got {source!r}"
        )
    if source_dir is not None:
        folder = Path(source_dir).expanduser()
        paths, why = find_files(folder, IDX_FILE_NAMES, _resolve_file)
        if paths is None:
            raise SourceNotFoundError(
                f"source folder {folder} {why} (needs {', '.join(IDX_FILE_NAMES)}, "
                "each with or without .gz)"
            )
        return _load_files(SOURCE_DIR_NAME, paths)

    spec = MNIST_LIKE_REGISTRY[source]
    root = Path(root).expanduser() if root is not None else default_root()
    notes = []
    for folder in (root / spec.folder / "raw", *SYSTEM_DIRS.get(source, ())):
        paths, why = find_files(folder, IDX_FILE_NAMES, _resolve_file)
        if paths is not None:
            return _load_files(source, paths)
        notes.append(f"{folder} ({why})")
    tried = ", ".join(notes)
    if not download:
        raise SourceNotFoundError(
            f"{source} source not found; looked in {tried}; "
            f"{_fix_hint(source, offer_download=True)}"
        )
    _download(source, spec, root, tried)
    raw = root / spec.folder / "raw"
    paths, why = find_files(raw, IDX_FILE_NAMES, _resolve_file)
    if paths is None:
        raise SourceNotFoundError(
            f"torchvision reported {source} downloaded but {raw} {why}; "
            f"{_fix_hint(source, offer_download=False)}"
        )
    return _load_files(source, paths)
