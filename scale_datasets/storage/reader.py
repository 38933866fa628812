"""Reading the attributes and layout of a format-1 file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py

from ..errors import IntegrityError, InvalidParameterError
from .format import FORMAT_NAME, FORMAT_VERSION, realisation_group

SAMPLE_COLUMNS = ("images", "labels", "scales", "source_index")
SPLIT_ORDER = ("train", "val", "test")


@dataclass(frozen=True)
class SplitInfo:
    name: str
    size: int
    image_shape: tuple[int, ...]


@dataclass(frozen=True)
class FileInfo:
    """What `info` shows: everything recorded about a file, without reading pixels."""

    path: str
    preset: str
    preset_version: int
    params: dict[str, Any]
    source: dict[str, Any]
    created_with: dict[str, str]
    content_sha256: str
    shard: dict[str, int] | None
    realisations: dict[int, tuple[SplitInfo, ...]]
    file_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "preset": self.preset,
            "preset_version": self.preset_version,
            "params": self.params,
            "source": self.source,
            "created_with": self.created_with,
            "content_sha256": self.content_sha256,
            "shard": self.shard,
            "file_bytes": self.file_bytes,
            "realisations": {
                str(k): {
                    s.name: {"size": s.size, "image_shape": list(s.image_shape)} for s in splits
                }
                for k, splits in self.realisations.items()
            },
        }


def open_ours(path: Path | str) -> h5py.File:
    """Open a file read-only, raising IntegrityError unless it is one of ours."""
    path = Path(path)
    if not path.is_file():
        raise IntegrityError(f"{path}: no such file")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise IntegrityError(f"{path}: not a readable HDF5 file ({exc})") from exc
    fmt = h5.attrs.get("format")
    if fmt != FORMAT_NAME:
        h5.close()
        raise IntegrityError(f"{path}: not a scale-datasets file (format attribute {fmt!r})")
    version = int(h5.attrs.get("format_version", -1))
    if version != FORMAT_VERSION:
        h5.close()
        raise IntegrityError(
            f"{path}: format version {version}, this package reads {FORMAT_VERSION}"
        )
    return h5


def split_group(h5: h5py.File, realisation: int, split: str) -> h5py.Group:
    """The group of one split of one realisation; a missing one names the field and what the
    file has instead."""
    group = realisation_group(realisation)
    if group not in h5:
        have = sorted(int(g.split("_")[1]) for g in h5 if g.startswith("realisation_"))
        raise InvalidParameterError(
            f"realisation: {realisation} is not in {h5.filename} (it has {have})"
        )
    if split not in h5[group]:
        have = sorted(h5[group])
        raise InvalidParameterError(
            f"split: {split!r} is not in {h5.filename} (it has {', '.join(have)})"
        )
    return h5[group][split]


def _json_attr(h5: h5py.File, key: str) -> Any:
    try:
        return json.loads(h5.attrs[key])
    except (KeyError, ValueError) as exc:
        raise IntegrityError(f"{h5.filename}: attribute {key!r} missing or not JSON") from exc


def read_info(path: Path | str) -> FileInfo:
    with open_ours(path) as h5:
        realisations: dict[int, tuple[SplitInfo, ...]] = {}
        for group_name in sorted(h5):
            if not group_name.startswith("realisation_"):
                continue
            group = h5[group_name]
            names = [n for n in group if isinstance(group[n], h5py.Group) and "labels" in group[n]]
            names.sort(key=lambda n: (SPLIT_ORDER.index(n) if n in SPLIT_ORDER else 99, n))
            splits = tuple(
                SplitInfo(n, int(group[n]["labels"].shape[0]), tuple(group[n]["images"].shape[1:]))
                for n in names
            )
            realisations[int(group.attrs["realisation"])] = splits
        shard = _json_attr(h5, "shard") if "shard" in h5.attrs else None
        return FileInfo(
            path=str(path),
            preset=str(h5.attrs.get("preset", "")),
            preset_version=int(h5.attrs.get("preset_version", -1)),
            params=_json_attr(h5, "params"),
            source=_json_attr(h5, "source"),
            created_with=_json_attr(h5, "created_with"),
            content_sha256=str(h5.attrs.get("content_sha256", "")),
            shard=shard,
            realisations=realisations,
            file_bytes=Path(path).stat().st_size,
        )
