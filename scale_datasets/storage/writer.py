"""Streaming writer of our files: datasets are filled in row order and hashed as they go."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import h5py
import numpy as np

from .format import FORMAT_NAME, FORMAT_VERSION, GZIP_LEVEL, canonical_json, chunk_shape
from .hashing import DatasetDigest, attributes_digest, dtype_name, file_digest, group_digest


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of the file: its full name, shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class FileSpec:
    """Everything about a file except the rows themselves."""

    preset: str
    preset_version: int
    params_json: str
    source: dict[str, Any]
    source_digests: dict[str, str]
    datasets: tuple[DatasetSpec, ...]
    layout: str
    render_json: str
    group_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra_root_attrs: dict[str, Any] = field(default_factory=dict)
    # Merging shards of an older version writes that version (layout and render unrecorded).
    format_version: int = FORMAT_VERSION

    def layout_render(self) -> dict[str, str] | None:
        """What the content hash covers of the layout and render op (format 2 on)."""
        if self.format_version < 2:
            return None
        return {"layout": self.layout, "render": self.render_json}


def package_versions() -> dict[str, str]:
    """The versions that made a file, without importing the heavy packages."""
    versions = {}
    for name in ("scale-datasets", "numpy", "torch", "pillow", "h5py"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


class StreamingWriter:
    """Creates every dataset up front, then takes rows in order and hashes them on the way."""

    def __init__(self, h5: h5py.File, spec: FileSpec) -> None:
        self._h5 = h5
        self._spec = spec
        self._digests: dict[str, DatasetDigest] = {}
        h5.attrs["format"] = FORMAT_NAME
        h5.attrs["format_version"] = spec.format_version
        h5.attrs["preset"] = spec.preset
        h5.attrs["preset_version"] = spec.preset_version
        h5.attrs["params"] = spec.params_json
        for key, value in (spec.layout_render() or {}).items():
            h5.attrs[key] = value
        h5.attrs["source"] = json.dumps(spec.source, sort_keys=True)
        h5.attrs["created_with"] = json.dumps(package_versions(), sort_keys=True)
        h5.attrs["dataset_names"] = canonical_json(sorted(ds.name for ds in spec.datasets))
        for key, value in spec.extra_root_attrs.items():
            h5.attrs[key] = value
        for group, attrs in spec.group_attrs.items():
            grp = h5.require_group(group)
            for key, value in attrs.items():
                grp.attrs[key] = value
        for ds in spec.datasets:
            dtype = np.dtype(ds.dtype)
            chunks = chunk_shape(ds.shape, dtype)
            options: dict[str, Any] = {}
            if chunks is not None:
                options = dict(
                    chunks=chunks, compression="gzip", compression_opts=GZIP_LEVEL, fletcher32=True
                )
            h5.create_dataset(ds.name, shape=ds.shape, dtype=dtype, **options)
            self._digests[ds.name] = DatasetDigest(ds.name, dtype_name(dtype), ds.shape)

    def write(
        self, name: str, start: int, rows: np.ndarray, chunks: list[bytes] | None = None
    ) -> None:
        """Write rows [start, start + len(rows)) of dataset `name`; rows must come in order.

        With `chunks` (the rows already encoded, one entry per HDF5 chunk: see storage.chunks)
        they are stored as they are; `start` must then be chunk-aligned.
        """
        digest = self._digests[name]
        if start != digest.rows_seen:
            raise RuntimeError(f"rows of {name} out of order: {start} != {digest.rows_seen}")
        dataset = self._h5[name]
        if chunks is None:
            if len(rows):
                dataset[start : start + len(rows)] = rows
        else:
            chunk_rows = dataset.chunks[0]
            if start % chunk_rows or len(chunks) != -(-len(rows) // chunk_rows):
                raise RuntimeError(
                    f"{name}: {len(chunks)} encoded chunks for rows {start}..{start + len(rows)} "
                    f"do not match the dataset's chunks of {chunk_rows} rows"
                )
            zeros = (0,) * (dataset.ndim - 1)
            for k, chunk in enumerate(chunks):
                dataset.id.write_direct_chunk((start + k * chunk_rows, *zeros), chunk)
        digest.update(np.asarray(rows, dtype=np.dtype(digest.dtype)))

    def finish(self) -> str:
        """Record every digest; returns the file's content_sha256."""
        entries = []
        for name, digest in self._digests.items():
            if digest.rows_seen != digest.shape[0]:
                raise RuntimeError(f"{name}: wrote {digest.rows_seen} of {digest.shape[0]} rows")
            sha = digest.hexdigest()
            self._h5[name].attrs["sha256"] = sha
            entries.append(
                {"name": name, "dtype": digest.dtype, "shape": list(digest.shape), "sha256": sha}
            )
        for group in self._spec.group_attrs:
            self._h5[group].attrs["content_sha256"] = group_digest(entries, group)
        content = file_digest(
            self._spec.params_json, self._spec.source_digests, entries, self._spec.layout_render()
        )
        self._h5.attrs["content_sha256"] = content
        self._h5.attrs["attrs_sha256"] = attributes_digest(self._h5)
        return content
