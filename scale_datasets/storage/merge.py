"""`merge`: join the shards of one build into the file a single build would have written."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import h5py

from ..errors import IntegrityError, InvalidParameterError
from .atomic import atomic_output, check_can_create
from .format import canonical_json
from .hashing import DatasetDigest, dtype_name
from .reader import layout_and_render, open_ours, row_blocks
from .writer import DatasetSpec, FileSpec, StreamingWriter

log = logging.getLogger(__name__)

_SAME = (
    "format_version",
    "preset",
    "preset_version",
    "params",
    "layout",
    "render",
    "dataset_names",
)


def _shard_of(h5: h5py.File) -> tuple[int, int]:
    if "shard" not in h5.attrs:
        raise InvalidParameterError(f"{h5.filename} is not a shard (it has no shard attribute)")
    try:
        shard = json.loads(h5.attrs["shard"])
        return int(shard["index"]), int(shard["count"])
    except (TypeError, ValueError, KeyError) as exc:
        raise IntegrityError(
            f"{h5.filename}: malformed shard attribute {h5.attrs['shard']!r} ({exc})"
        ) from exc


def _check_compatible(files: list[h5py.File]) -> None:
    first = files[0]
    for other in files[1:]:
        for key in _SAME:
            if first.attrs.get(key) != other.attrs.get(key):
                raise InvalidParameterError(
                    f"{other.filename} and {first.filename} differ in {key}: not shards of one "
                    "build"
                )
        a, b = json.loads(first.attrs["source"]), json.loads(other.attrs["source"])
        if a.get("sha256") != b.get("sha256"):
            raise InvalidParameterError(
                f"{other.filename} and {first.filename} were built from different source data"
            )
    indices = sorted(_shard_of(h5) for h5 in files)
    count = indices[0][1]
    if indices != [(i, count) for i in range(1, count + 1)]:
        got = ", ".join(f"{i}/{n}" for i, n in indices)
        raise InvalidParameterError(
            f"need shards 1/{count} .. {count}/{count} once each, got {got}"
        )


def merge_shards(
    shards: list[Path],
    out: Path,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Concatenate shards row-wise (checking each shard's digests) into `out`, atomically."""
    if not shards:
        raise InvalidParameterError("merge: give at least one shard")
    check_can_create(out, overwrite)
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(open_ours(path)) for path in shards]
        _check_compatible(files)
        files.sort(key=lambda h5: _shard_of(h5)[0])
        first = files[0]
        names = sorted(json.loads(first.attrs["dataset_names"]))
        source = json.loads(first.attrs["source"])
        datasets = []
        for name in names:
            parts = [h5[name] for h5 in files]
            rows = sum(p.shape[0] for p in parts)
            datasets.append(DatasetSpec(name, (rows, *parts[0].shape[1:]), parts[0].dtype.str))
        group_attrs = {
            name: {k: v for k, v in first[name].attrs.items() if k != "content_sha256"}
            for name in first
            if isinstance(first[name], h5py.Group)
        }
        layout, render = layout_and_render(first)
        render_json = (
            str(first.attrs["render"]) if "render" in first.attrs else canonical_json(render)
        )
        spec = FileSpec(
            preset=str(first.attrs["preset"]),
            preset_version=int(first.attrs["preset_version"]),
            params_json=str(first.attrs["params"]),
            source=source,
            source_digests=source["sha256"],
            datasets=tuple(datasets),
            layout=layout,
            render_json=render_json,
            format_version=int(first.attrs["format_version"]),
            group_attrs=group_attrs,
        )
        total = sum(ds.shape[0] for ds in datasets)
        done = 0
        with atomic_output(out, overwrite) as tmp, h5py.File(tmp, "w") as h5:
            writer = StreamingWriter(h5, spec)
            for ds in datasets:
                offset = 0
                for shard_file in files:
                    part = shard_file[ds.name]
                    check = DatasetDigest(ds.name, dtype_name(part.dtype), tuple(part.shape))
                    for start, rows in row_blocks(part):
                        check.update(rows)
                        writer.write(ds.name, offset + start, rows)
                    if part.attrs.get("sha256") != check.hexdigest():
                        raise IntegrityError(
                            f"{shard_file.filename}: {ds.name} does not match its recorded sha256"
                        )
                    offset += part.shape[0]
                    done += part.shape[0]
                    if progress is not None:
                        progress(done, total)
            writer.finish()
    log.info("merged %d shards into %s", len(shards), out)
    return out
