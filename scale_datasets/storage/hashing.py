"""The content hash: logical content, never file bytes.

Each dataset's digest is sha256 over its C-order bytes (little-endian). The file's digest is
sha256 over the canonical JSON of the params, the source arrays' digests, the layout and render op
(format 2 on) and, for every dataset
sorted by name, its name, dtype, shape and digest. So the hash is stable across HDF5 and zlib
versions, chunking and compression, and equal content always hashes equal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import h5py
import numpy as np

from .format import canonical_json


def array_bytes(array: np.ndarray) -> memoryview:
    """The bytes that are hashed: C order, little-endian."""
    array = np.ascontiguousarray(array)
    if array.size == 0:  # memoryview cannot cast a view with a zero in its shape
        return memoryview(b"")
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return memoryview(array).cast("B")


def dtype_name(dtype: np.dtype) -> str:
    """Byte-order-explicit dtype name, e.g. '|u1', '<f4', '<i8'."""
    return np.dtype(dtype).newbyteorder("<").str


@dataclass
class DatasetDigest:
    """Streaming sha256 of one dataset, fed rows in order."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    _sha: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)
    rows_seen: int = 0

    def update(self, rows: np.ndarray) -> None:
        self._sha.update(array_bytes(rows))
        self.rows_seen += len(rows)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def file_digest(
    params_json: str,
    source_digests: dict[str, str],
    datasets: list[dict],
    layout_render: dict[str, str] | None = None,
) -> str:
    """Combine per-dataset digests into the file's content_sha256.

    `layout_render` ({"layout": ..., "render": ...}, format 2 on) covers how the stored data is to
    be rendered, so editing the render op's record is caught like editing the params.
    """
    payload: dict[str, object] = {
        "params": params_json,
        "source": source_digests,
        "datasets": sorted(datasets, key=lambda d: d["name"]),
    }
    if layout_render is not None:
        payload["layout_render"] = layout_render
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def group_digest(datasets: list[dict], prefix: str) -> str:
    """Digest of the datasets under one group (e.g. a realisation), independent of the rest."""
    inside = [d for d in datasets if d["name"].startswith(prefix + "/")]
    payload = sorted(
        ({**d, "name": d["name"][len(prefix) + 1 :]} for d in inside), key=lambda d: d["name"]
    )
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


# Attributes no reader relies on (``created_with``: package versions, for people) and the digests
# themselves; every other attribute of the file, its groups and its datasets is covered by the
# attributes digest (`attributes_digest`), recorded as the root attribute ``attrs_sha256``.
UNCOVERED_ATTRIBUTES = ("created_with", "content_sha256", "attrs_sha256", "sha256")


def _plain(value: object) -> object:
    """An HDF5 attribute value as JSON-able Python (numbers, strings, lists)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def attributes_digest(h5: h5py.File) -> str:
    """sha256 over every attribute a reader relies on (all but `UNCOVERED_ATTRIBUTES`) of the
    file, its groups and its datasets, each with the object it sits on; so a
    changed, added or removed attribute (a realisation's id, the preset, the source record, a
    group's statistics) changes the digest."""
    objects: dict[str, dict[str, object]] = {}

    def collect(name: str, obj: h5py.File | h5py.Group | h5py.Dataset) -> None:
        attrs = obj.attrs
        objects[name] = {
            key: _plain(attrs[key]) for key in sorted(attrs) if key not in UNCOVERED_ATTRIBUTES
        }

    collect("/", h5)
    h5.visititems(collect)
    return hashlib.sha256(canonical_json(objects).encode()).hexdigest()
