"""What every source reader returns, and the helpers they share.

A source is the pool a preset samples from (train samples followed by test samples) with its
labels and the sha256 of the decoded arrays, so a built file records exactly what it came from.
Readers never import torch unless they download.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import SourceNotFoundError

log = logging.getLogger(__name__)


class Source(Protocol):
    """The interface presets rely on: a name, a JSON description, and the pool's arrays."""

    name: str
    images: np.ndarray  # (N, H, W) or (N, C, H, W) uint8, read-only
    labels: np.ndarray  # (N,) int64

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True, eq=False)  # eq on numpy fields would raise; compare the sha256 instead
class SourceData:
    """A decoded source pool: train images then test images, read-only, with content hashes."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    n_train: int
    files: tuple[str, ...]
    images_sha256: str
    labels_sha256: str

    @property
    def n_test(self) -> int:
        return len(self.images) - self.n_train

    def describe(self) -> dict[str, Any]:
        """JSON-able summary that goes into a built file's `source` attribute."""
        return {
            "name": self.name,
            "files": list(self.files),
            "n_train": self.n_train,
            "n_test": self.n_test,
            "shape": list(self.images.shape),
            "sha256": {"images": self.images_sha256, "labels": self.labels_sha256},
        }


def pool_source(
    name: str, files: tuple[str, ...], images: np.ndarray, labels: np.ndarray, n_train: int
) -> SourceData:
    """A SourceData over pooled arrays, made read-only so the recorded hashes stay true."""
    images = np.ascontiguousarray(images)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return SourceData(
        name=name,
        images=images,
        labels=labels,
        n_train=n_train,
        files=files,
        images_sha256=sha256_of(images),
        labels_sha256=sha256_of(labels),
    )


def default_root() -> Path:
    """`$SCALE_DATASETS_HOME` if set, else `~/.cache/scale-datasets` (torchvision layout inside)."""
    env = os.environ.get("SCALE_DATASETS_HOME")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "scale-datasets"


def sha256_of(array: np.ndarray) -> str:
    """sha256 of an array's C-order bytes."""
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def one_line(text: str, limit: int = 300) -> str:
    """Collapse a (possibly multi-line) exception text so CLI errors stay on one line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


# Without a socket timeout a black-holed connection can hang urllib for minutes.
DOWNLOAD_TIMEOUT_S = 30.0
# What a torchvision download raises when it fails: URLError and socket timeouts are OSErrors,
# md5 and mirror failures RuntimeErrors, broken archives the last three.
DOWNLOAD_ERRORS: tuple[type[BaseException], ...] = (
    ImportError,
    OSError,
    RuntimeError,
    ValueError,
    EOFError,
    tarfile.TarError,
    zlib.error,
)


def find_files(
    folder: Path, names: tuple[str, ...], resolve: Callable[[Path, str], Path | None] | None = None
) -> tuple[tuple[Path, ...] | None, str]:
    """The named files in `folder` (each found by `resolve`, default: exactly that name), or
    None and a note on why the folder did not qualify ("does not exist", "lacks a, b")."""
    if not folder.is_dir():
        return None, "does not exist"
    resolve = resolve or (lambda where, name: where / name if (where / name).is_file() else None)
    found = [resolve(folder, name) for name in names]
    missing = [name for name, path in zip(names, found, strict=True) if path is None]
    if missing:
        odd = [note for name in missing if (note := _not_a_file(folder, name))]
        return None, "; ".join(odd) if odd else "lacks " + ", ".join(missing)
    return tuple(path for path in found if path is not None), ""


def _not_a_file(folder: Path, name: str) -> str:
    """What stands where a source file should be, when it is not a readable file ("" if
    nothing does): so a user hears "is a directory", not "lacks"."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_dir():
            return f"has {candidate.name} as a directory, not a file"
        if candidate.is_symlink() and not candidate.exists():
            return f"has {candidate.name} as a broken or looping symlink"
    return ""


def download_with_torchvision(
    source: str, into: Path, tried: str, fix: str, fetch: Callable[[Any], None]
) -> None:
    """Run `fetch(torchvision.datasets)` under a socket timeout (restored after), turning any
    failure into one SourceNotFoundError line saying where it looked and how to fix it."""
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    # The folders torchvision creates; a failed download removes those it left empty.
    created = [d for d in (into, *into.parents) if not d.exists()]
    try:
        from torchvision import datasets as tv_datasets

        log.info("downloading %s with torchvision into %s", source, into)
        fetch(tv_datasets)
    except DOWNLOAD_ERRORS as exc:
        for folder in created:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty
        raise SourceNotFoundError(
            f"downloading {source} with torchvision into {into} failed "
            f"({type(exc).__name__}: {one_line(str(exc))}); looked first in {tried}; {fix}"
        ) from exc
    finally:
        socket.setdefaulttimeout(old_timeout)
