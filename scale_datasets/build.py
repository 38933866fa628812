"""The Python API of `scale-datasets build`: params -> plan -> render -> atomic write."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .errors import InvalidParameterError
from .parallel import default_workers, ordered_map
from .presets import get_preset
from .presets.base import Plan, Preset, RenderTask, SplitPlan
from .shards import Shard
from .storage.atomic import atomic_output, check_can_create
from .storage.card import write_card
from .storage.chunks import render_and_encode
from .storage.format import GZIP_LEVEL, canonical_json, chunk_shape
from .storage.reader import read_info
from .storage.writer import DatasetSpec, FileSpec, StreamingWriter

log = logging.getLogger(__name__)

# progress(stage, done, total)
Progress = Callable[[str, int, int], None]

LOADER_EXAMPLE = (
    "from scale_datasets import MNISTScale\n"
    "train = MNISTScale('{path}', split='train', realisation=0)"
)

# About 4 MB of pixels per render task: enough work to amortise the hand-off to a worker.
BLOCK_BYTES = 4 * 1024 * 1024


def default_output(preset: str, source_name: str, shard: Shard | None) -> Path:
    stem = f"{preset}-{source_name}"
    if shard is not None:
        stem += f".shard-{shard.index}-of-{shard.count}"
    return Path(f"{stem}.h5")


def _chunk_rows(rows: int, split: SplitPlan) -> int:
    """Rows per HDF5 chunk of a split's images dataset holding `rows` rows."""
    chunk = chunk_shape((max(rows, 1), *split.image_shape), np.dtype(split.image_dtype))
    return chunk[0] if chunk else 1


def _block_rows(chunk_rows: int, split: SplitPlan) -> int:
    """Rows per render task: a whole number of HDF5 chunks of about BLOCK_BYTES."""
    row_bytes = int(np.prod(split.image_shape)) * np.dtype(split.image_dtype).itemsize
    return max(chunk_rows, (BLOCK_BYTES // max(row_bytes, 1)) // chunk_rows * chunk_rows)


def _file_spec(
    preset: Preset, params: Any, source_desc: dict[str, Any], plan: Plan, shard: Shard | None
) -> FileSpec:
    datasets = []
    group_attrs = {group: dict(attrs) for group, attrs in plan.group_attrs.items()}
    for split in plan.splits:
        lo, hi = shard.rows(len(split)) if shard else (0, len(split))
        datasets.append(
            DatasetSpec(f"{split.group}/images", (hi - lo, *split.image_shape), split.image_dtype)
        )
        for column, values in split.columns.items():
            datasets.append(
                DatasetSpec(
                    f"{split.group}/{column}", (hi - lo, *values.shape[1:]), values.dtype.str
                )
            )
        if shard:
            group_attrs[split.group] = {"shard_rows": canonical_json([lo, hi, len(split)])}
    extra = {"shard": canonical_json({"index": shard.index, "count": shard.count})} if shard else {}
    return FileSpec(
        preset=preset.name,
        preset_version=preset.version,
        params_json=params.to_json(),
        source=source_desc,
        source_digests=source_desc["sha256"],
        datasets=tuple(datasets),
        group_attrs=group_attrs,
        extra_root_attrs=extra,
    )


def _tasks(
    preset: Preset, params: Any, plan: Plan, shard: Shard | None
) -> Iterator[tuple[str, int, RenderTask]]:
    """(dataset, first row, task) per block; each task renders and gzips its block's chunks."""
    for split in plan.splits:
        lo, hi = shard.rows(len(split)) if shard else (0, len(split))
        chunk_rows = _chunk_rows(hi - lo, split)
        step = _block_rows(chunk_rows, split)
        for start in range(lo, hi, step):
            stop = min(start + step, hi)
            fn, args = preset.render_task(params, split, start, stop)
            task = (render_and_encode, (fn, args, chunk_rows, GZIP_LEVEL))
            yield f"{split.group}/images", start - lo, task


def _check_option_names(preset: Preset, options: dict[str, Any]) -> None:
    """Reject options the preset does not have, naming them and the ones it has."""
    accepted = {f.name for f in dataclasses.fields(preset.params_type)}
    accepted |= {
        name
        for name, p in inspect.signature(preset.make_params).parameters.items()
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InvalidParameterError(
            f"{preset.name}: no option {', '.join(unknown)}; options: {', '.join(sorted(accepted))}"
        )


def build(
    preset: str,
    out: str | Path | None = None,
    *,
    source: str = "mnist",
    source_dir: str | Path | None = None,
    root: str | Path | None = None,
    download: bool = True,
    workers: int | None = None,
    shard: str | Shard | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    **options: Any,
) -> Path:
    """Build a preset into one verified HDF5 file (and its card); returns the file's path.

    `options` are the preset's parameters, e.g. `realisations=6`, `min_scale=0.3`.
    """
    started = time.perf_counter()
    chosen = get_preset(preset)
    _check_option_names(chosen, options)
    params = chosen.make_params(**options)
    shard = Shard.parse(shard) if isinstance(shard, str) else shard
    if out is not None:
        check_can_create(Path(out), overwrite)
    data_source = chosen.load_source(
        source, Path(source_dir) if source_dir else None, Path(root) if root else None, download
    )
    out = Path(out) if out is not None else default_output(chosen.name, data_source.name, shard)
    check_can_create(out, overwrite)
    plan = chosen.plan(params, data_source)
    spec = _file_spec(chosen, params, data_source.describe(), plan, shard)
    total_rows = sum(ds.shape[0] for ds in spec.datasets if ds.name.endswith("/images"))
    workers = default_workers() if workers is None else max(1, workers)
    log.info("building %s into %s with %d worker(s)", chosen.name, out, workers)

    with atomic_output(out, overwrite) as tmp, h5py.File(tmp, "w") as h5:
        writer = StreamingWriter(h5, spec)
        for split in plan.splits:
            lo, hi = shard.rows(len(split)) if shard else (0, len(split))
            for column, values in split.columns.items():
                writer.write(f"{split.group}/{column}", 0, values[lo:hi])
        tasks = list(_tasks(chosen, params, plan, shard))
        results = ordered_map(
            (task for _, _, task in tasks), chosen.worker_state(data_source), workers
        )
        done = 0
        for (name, start, _), (pixels, chunks) in zip(tasks, results, strict=True):
            writer.write(name, start, pixels, chunks)
            done += len(pixels)
            if progress is not None:
                progress("render", done, total_rows)
        content = writer.finish()
    info = read_info(out)
    write_card(out, info, chosen.summary, LOADER_EXAMPLE)
    log.info(
        "wrote %s (%.1f MB, content_sha256 %s) in %.1f s",
        out,
        info.file_bytes / 1e6,
        content,
        time.perf_counter() - started,
    )
    return out


def merge(
    shards: list[str | Path],
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Join the shards of one build into one file (and its card); returns the file's path."""
    from .storage.merge import merge_shards

    out = merge_shards([Path(s) for s in shards], Path(out), overwrite=overwrite, progress=progress)
    info = read_info(out)
    write_card(out, info, get_preset(info.preset).summary, LOADER_EXAMPLE)
    return out
