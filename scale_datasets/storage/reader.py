"""Reading the attributes and layout of our files (format 1 and 2)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import IntegrityError, InvalidParameterError, NoSuchFileError, ScaleDatasetsError
from .format import (
    BASE_GROUP,
    FORMAT_NAME,
    READABLE_VERSIONS,
    SPLITS,
    chunk_shape,
    realisation_group,
)

PLAN_COLUMNS = ("scales", "resolutions")

# How version-1 files (MNIST-Scale, pixels, exact centre) were rendered, from their params.
_V1_RENDER_KEYS = ("canvas", "interpolation")


@dataclass(frozen=True)
class SplitInfo:
    name: str
    size: int
    column: str  # the plan column: "scales" or "resolutions"
    value_range: tuple[float, float] | None  # min and max of the plan column (None if empty)
    image_shape: tuple[int, ...] | None  # stored pixels per sample (pixels layout only)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"size": self.size}
        if self.image_shape is not None:
            out["image_shape"] = list(self.image_shape)
        out[self.column] = list(self.value_range) if self.value_range else None
        return out

    def describe(self, rendered_shape: str) -> str:
        """e.g. "28 x 28, scales 0.30..1.00" or "3 x r x r, resolutions 49..97"; on-access
        splits show `rendered_shape` (FileInfo.rendered_shape)."""
        shape = " x ".join(map(str, self.image_shape)) if self.image_shape else rendered_shape
        if self.value_range is None:
            return shape
        lo, hi = self.value_range
        if self.column == "resolutions":
            return f"{shape}, {self.column} {int(lo)}..{int(hi)}"
        return f"{shape}, {self.column} {lo:.2f}..{hi:.2f}"


@dataclass(frozen=True)
class FileInfo:
    """What `info` shows: everything recorded about a file, without reading pixels."""

    path: str
    format_version: int
    preset: str
    preset_version: int
    params: dict[str, Any]
    source: dict[str, Any]
    layout: str
    render: dict[str, Any]
    base_shape: tuple[int, ...] | None  # the stored pool's (N, ...) shape, on-access only
    base_dtype: str | None  # and its dtype: uint8 images, float64 signals
    materialised: bool
    created_with: dict[str, str]
    content_sha256: str
    shard: dict[str, int] | None
    realisations: dict[int, tuple[SplitInfo, ...]]
    file_bytes: int

    @property
    def rendered_shape(self) -> str:
        """The shape of an on-access sample as rendered, e.g. "1 x 168 x 168", "3 x r x r" or,
        for signals, "1 x n"."""
        if self.base_dtype is not None and self.base_dtype != "uint8" and self.base_shape:
            return f"{self.base_shape[1]} x n"  # a signal pool (N, C, L): C x n samples
        channels = self.base_shape[1] if self.base_shape and len(self.base_shape) == 4 else 1
        canvas = self.render["params"].get("canvas")
        side = "r" if self.render["column"] == "resolutions" or canvas is None else canvas
        return f"{channels} x {side} x {side}"

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format_version": self.format_version,
            "preset": self.preset,
            "preset_version": self.preset_version,
            "params": self.params,
            "source": self.source,
            "layout": self.layout,
            "render": self.render,
            "base_shape": list(self.base_shape) if self.base_shape else None,
            "base_dtype": self.base_dtype,
            "materialised": self.materialised,
            "created_with": self.created_with,
            "content_sha256": self.content_sha256,
            "shard": self.shard,
            "file_bytes": self.file_bytes,
            "realisations": {
                str(k): {s.name: s.to_json() for s in splits}
                for k, splits in self.realisations.items()
            },
        }


def open_ours(path: Path | str) -> h5py.File:
    """Open a file read-only, raising IntegrityError unless it is one of ours."""
    path = Path(path)
    if not path.is_file():
        what = "a directory, not a file" if path.is_dir() else "no such file"
        raise NoSuchFileError(f"{path}: {what}")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise IntegrityError(f"{path}: not a readable HDF5 file ({exc})") from exc
    fmt = h5.attrs.get("format")
    if fmt != FORMAT_NAME:
        h5.close()
        raise IntegrityError(f"{path}: not a scale-datasets file (format attribute {fmt!r})")
    raw = h5.attrs.get("format_version", -1)
    try:
        version = int(raw)
    except (TypeError, ValueError):
        version = None
    if version not in READABLE_VERSIONS:
        h5.close()
        raise IntegrityError(
            f"{path}: format version {raw if version is None else version}, this package reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    try:
        _check_structure(path, h5)
    except BaseException:
        h5.close()
        raise
    return h5


def _check_structure(path: Path, h5: h5py.File) -> None:
    """Before anything is read: every chunked dataset stores all the chunks its shape declares
    (a crafted shape of 10^9 rows with nothing behind it is refused here, not by the OOM
    killer), and the datasets of one split agree on its number of samples."""
    problems: list[str] = []

    def visit(name: str, obj: object) -> None:
        if problems or not isinstance(obj, h5py.Dataset) or obj.chunks is None:
            return
        expected = math.prod(-(-s // c) for s, c in zip(obj.shape, obj.chunks, strict=True))
        stored = obj.id.get_num_chunks()
        if stored != expected:
            problems.append(
                f"dataset {name} declares shape {obj.shape} ({expected} chunks) but stores "
                f"{stored} chunk(s)"
            )

    h5.visititems(visit)
    for group in h5.values():
        if not isinstance(group, h5py.Group):
            continue
        for split in [group, *(g for g in group.values() if isinstance(g, h5py.Group))]:
            rows = {
                n: member.shape[0]
                for n, member in split.items()
                if isinstance(member, h5py.Dataset) and n != "index" and member.ndim
            }
            if len(set(rows.values())) > 1:
                detail = ", ".join(f"{n} {r}" for n, r in sorted(rows.items()))
                problems.append(f"{split.name.lstrip('/')}: datasets disagree on rows ({detail})")
    if problems:
        raise IntegrityError(f"{path}: {problems[0]}")


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


# Rows read at a time when a whole dataset is streamed (verify, merge, checked loads): whole
# HDF5 chunks, so each is decompressed once, and few enough to keep the peak small.
BLOCK_CHUNKS = 16


def row_blocks(dataset: h5py.Dataset) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, rows) over a dataset, in blocks of whole chunks; IntegrityError naming the
    file and the dataset if a block is unreadable or fails its chunk checksum."""
    chunks = dataset.chunks or chunk_shape(dataset.shape, dataset.dtype) or (1,)
    step = max(chunks[0] * BLOCK_CHUNKS, 1)
    for start in range(0, dataset.shape[0] if dataset.shape else 0, step):
        try:
            rows = dataset[start : start + step]
        except OSError as exc:
            raise unreadable(dataset.file.filename, dataset, exc) from exc
        yield start, rows


def unreadable(path: Path | str, dataset: h5py.Dataset, exc: OSError) -> IntegrityError:
    """The error for a dataset HDF5 cannot read back (a failed chunk checksum, say)."""
    name = dataset.name.lstrip("/")
    return IntegrityError(
        f"{path}: dataset {name} is unreadable or fails its chunk checksum ({exc})"
    )


def _json_attr(h5: h5py.File, key: str) -> Any:
    try:
        return json.loads(h5.attrs[key])
    except (KeyError, ValueError) as exc:
        raise IntegrityError(f"{h5.filename}: attribute {key!r} missing or not JSON") from exc


def layout_and_render(h5: h5py.File) -> tuple[str, dict[str, Any]]:
    """The file's layout and render record; version-1 files get theirs from their params."""
    if int(h5.attrs["format_version"]) == 1:
        params = _json_attr(h5, "params")
        render_params = {key: params[key] for key in _V1_RENDER_KEYS if key in params}
        return "pixels", {"op": "pil_affine_scale", "column": "scales", "params": render_params}
    layout = str(h5.attrs.get("layout", ""))
    if layout not in ("pixels", "on-access"):
        raise IntegrityError(f"{h5.filename}: unknown layout {layout!r}")
    render = _json_attr(h5, "render")
    if not isinstance(render, dict) or not {"op", "column", "params"} <= set(render):
        raise IntegrityError(f"{h5.filename}: attribute 'render' lacks op, column or params")
    return layout, render


def _value_range(column: h5py.Dataset) -> tuple[float, float] | None:
    values = column[()]
    return (values.min().item(), values.max().item()) if len(values) else None


def read_info(path: Path | str) -> FileInfo:
    """Everything recorded about a file; a file of ours whose structure or attributes are
    malformed (a dataset deleted, an empty group, an attribute of the wrong type) raises
    IntegrityError naming the file and what is off, never a bare KeyError."""
    try:
        return _read_info(path)
    except ScaleDatasetsError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(f"{path}: malformed file ({exc})") from exc


def _read_info(path: Path | str) -> FileInfo:
    with open_ours(path) as h5:
        layout, render = layout_and_render(h5)
        column = render["column"]
        realisations: dict[int, tuple[SplitInfo, ...]] = {}
        for group_name in sorted(h5):
            if not group_name.startswith("realisation_"):
                continue
            group = h5[group_name]
            names = [n for n in group if isinstance(group[n], h5py.Group) and "labels" in group[n]]
            names.sort(key=lambda n: (SPLITS.index(n) if n in SPLITS else 99, n))
            realisations[int(group.attrs["realisation"])] = tuple(
                SplitInfo(
                    n,
                    int(group[n]["labels"].shape[0]),
                    column,
                    _value_range(group[n][column]),
                    tuple(group[n]["images"].shape[1:]) if layout == "pixels" else None,
                )
                for n in names
            )
        base = f"{BASE_GROUP}/images"
        materialised = any(
            "index" in h5[g][n] for g in h5 if g.startswith("realisation_") for n in h5[g]
        )
        return FileInfo(
            path=str(path),
            format_version=int(h5.attrs["format_version"]),
            preset=str(h5.attrs.get("preset", "")),
            preset_version=int(h5.attrs.get("preset_version", -1)),
            params=_json_attr(h5, "params"),
            source=_json_attr(h5, "source"),
            layout=layout,
            render=render,
            base_shape=tuple(h5[base].shape) if base in h5 else None,
            base_dtype=h5[base].dtype.name if base in h5 else None,
            materialised=materialised,
            created_with=_json_attr(h5, "created_with"),
            content_sha256=str(h5.attrs.get("content_sha256", "")),
            shard=_json_attr(h5, "shard") if "shard" in h5.attrs else None,
            realisations=realisations,
            file_bytes=Path(path).stat().st_size,
        )
