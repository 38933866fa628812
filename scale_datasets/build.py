"""The Python API of `scale-datasets build`: params -> plan -> render -> atomic write.

Generic over presets: the preset gives the params, the source, the plan and the render op; what
is stored follows the preset's layout. `pixels`: each split's rendered samples. `on-access`: the
source pool once under /base, and each split's plan; `materialise=True` also stores the rendered
samples, grouped by plan value (`<split>/r<r>/images`, float32 (n, C, r, r)), with a flat
`<split>/index` (N, 2) int32 = (r, row in that group) so any sample is found in O(1).
Every dataset is split into the same contiguous rows by `--shard`, so merged shards equal one
build.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .errors import InvalidParameterError
from .ops.render import as_channels, get_render_op, render_uint8_block
from .parallel import default_workers, ordered_map
from .presets import get_preset
from .presets.base import Plan, Preset, RenderSpec, SplitPlan
from .shards import Shard
from .sources.common import Source
from .storage.atomic import atomic_output, check_can_create
from .storage.card import write_card
from .storage.chunks import render_and_encode
from .storage.format import BASE_GROUP, GZIP_LEVEL, canonical_json, chunk_shape
from .storage.reader import read_info
from .storage.writer import DatasetSpec, FileSpec, StreamingWriter

log = logging.getLogger(__name__)

# progress(stage, done, total)
Progress = Callable[[str, int, int], None]

# About 4 MB of samples per render task: enough work to amortise the hand-off to a worker.
BLOCK_BYTES = 4 * 1024 * 1024

# A task computes rows [start, stop) of one dataset from the pool: fn(pool, *args).
RenderTask = tuple[Callable[..., np.ndarray], tuple[Any, ...]]


@dataclass(frozen=True)
class Rendered:
    """A dataset whose rows are computed by tasks in the workers (and gzipped there)."""

    name: str
    shape: tuple[int, ...]  # rows in this file, then the row shape
    dtype: str
    task: Callable[[int, int], RenderTask]  # rows [start, stop) of this file -> task


def default_output(preset: str, source_name: str, shard: Shard | None) -> Path:
    stem = f"{preset}-{source_name}"
    if shard is not None:
        stem += f".shard-{shard.index}-of-{shard.count}"
    return Path(f"{stem}.h5")


def _rows(shard: Shard | None, n: int) -> tuple[int, int]:
    return shard.rows(n) if shard else (0, n)


def _take_rows(pool: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.ascontiguousarray(pool[lo:hi])


def _pixels_outputs(
    preset: Preset, params: Any, source: Source, plan: Plan, render: RenderSpec, shard: Shard | None
) -> list[Rendered]:
    shape = preset.sample_shape(params, source)
    outputs = []
    for split in plan.splits:
        lo, hi = _rows(shard, len(split))
        index, values = split.columns["source_index"], split.columns[render.column]

        def task(start: int, stop: int, index=index, values=values, lo=lo) -> RenderTask:
            rows = slice(lo + start, lo + stop)
            return render_uint8_block, (render.op, render.params, index[rows], values[rows])

        outputs.append(Rendered(f"{split.group}/images", (hi - lo, *shape), "uint8", task))
    return outputs


def _materialised_outputs(
    split: SplitPlan, render: RenderSpec, channels: int, shard: Shard | None
) -> tuple[list[Rendered], np.ndarray]:
    """One float32 dataset per plan value of a split, and the split's (value, row) index."""
    values, index = split.columns[render.column], split.columns["source_index"]
    lo, hi = _rows(shard, len(split))
    flat = np.zeros((len(split), 2), dtype=np.int32)
    outputs = []
    for value in np.unique(values):
        where = np.flatnonzero(values == value)
        flat[where] = np.stack([np.full(len(where), value), np.arange(len(where))], axis=1)
        first, last = np.searchsorted(where, [lo, hi])  # this shard's rows of the group
        mine = where[first:last]

        def task(start: int, stop: int, mine=mine, value=value) -> RenderTask:
            return render_uint8_block, (render.op, render.params, index[mine[start:stop]], value)

        shape = (len(mine), channels, *(int(value),) * get_render_op(render.op).dims)
        outputs.append(Rendered(f"{split.group}/r{int(value)}/images", shape, "float32", task))
    return outputs, flat[lo:hi]


def _blocks(output: Rendered) -> Iterator[tuple[int, RenderTask, int]]:
    """(first row, task, chunk rows) per block of about BLOCK_BYTES, whole HDF5 chunks each."""
    rows = output.shape[0]
    chunk = chunk_shape(output.shape, np.dtype(output.dtype))
    chunk_rows = chunk[0] if chunk else 1
    row_bytes = int(np.prod(output.shape[1:])) * np.dtype(output.dtype).itemsize
    step = max(chunk_rows, (BLOCK_BYTES // max(row_bytes, 1)) // chunk_rows * chunk_rows)
    for start in range(0, rows, step):
        yield start, output.task(start, min(start + step, rows)), chunk_rows


def _layout(
    preset: Preset,
    params: Any,
    source: Source,
    plan: Plan,
    render: RenderSpec,
    shard: Shard | None,
    materialise: bool,
) -> tuple[dict[str, np.ndarray], list[Rendered]]:
    """What this file stores: columns written as they are, and datasets rendered by tasks."""
    columns: dict[str, np.ndarray] = {}
    for split in plan.splits:
        lo, hi = _rows(shard, len(split))
        columns.update({f"{split.group}/{k}": v[lo:hi] for k, v in split.columns.items()})
    if preset.layout == "pixels":
        return columns, _pixels_outputs(preset, params, source, plan, render, shard)
    pool = source.images
    lo, hi = _rows(shard, len(pool))
    columns[f"{BASE_GROUP}/labels"] = np.asarray(source.labels, dtype=np.int64)[lo:hi]
    outputs = [
        Rendered(
            f"{BASE_GROUP}/images",
            (hi - lo, *pool.shape[1:]),
            np.dtype(pool.dtype).name,
            lambda start, stop, lo=lo: (_take_rows, (lo + start, lo + stop)),
        )
    ]
    if materialise:
        channels = as_channels(pool[:1]).shape[1]
        for split in plan.splits:
            rendered, flat = _materialised_outputs(split, render, channels, shard)
            outputs += rendered
            columns[f"{split.group}/index"] = flat
    return columns, outputs


# gzip shrinks our datasets about 3-5x; a build whose output would not fit even so is refused.
EXPECTED_COMPRESSION = 4


def _check_room(out: Path, columns: dict[str, np.ndarray], outputs: list[Rendered]) -> None:
    """Before any work: refuse a build whose output cannot fit on the output's disk (an
    enormous --canvas, say), giving the estimate."""
    raw = sum(v.nbytes for v in columns.values()) + sum(
        math.prod(o.shape) * np.dtype(o.dtype).itemsize for o in outputs
    )
    free = shutil.disk_usage(out.parent).free
    if raw / EXPECTED_COMPRESSION > free:
        raise InvalidParameterError(
            f"out: this build would write about {raw / 1e9:,.1f} GB before compression (about "
            f"{raw / EXPECTED_COMPRESSION / 1e9:,.1f} GB gzipped) to {out.parent}, which has "
            f"{free / 1e9:,.1f} GB free; lower --canvas, --realisations or the split sizes"
        )


def _check_materialise(preset: Preset, render: RenderSpec, materialise: bool) -> None:
    """Before any work: only on-access files rendered per resolution can be materialised."""
    if not materialise:
        return
    if preset.layout == "pixels":
        raise InvalidParameterError(
            f"materialise: {preset.name} stores its rendered pixels already (layout pixels)"
        )
    if not get_render_op(render.op).by_value:
        raise InvalidParameterError(f"materialise: not supported for render op {render.op}")


def _file_spec(
    preset: Preset,
    params: Any,
    source: Source,
    plan: Plan,
    render: RenderSpec,
    columns: dict[str, np.ndarray],
    outputs: list[Rendered],
    shard: Shard | None,
) -> FileSpec:
    datasets = [DatasetSpec(name, v.shape, v.dtype.str) for name, v in columns.items()]
    datasets += [DatasetSpec(o.name, o.shape, o.dtype) for o in outputs]
    group_attrs = {group: dict(attrs) for group, attrs in plan.group_attrs.items()}
    if preset.layout == "on-access":
        group_attrs[BASE_GROUP] = {}
    if shard:
        for split in plan.splits:
            lo, hi = shard.rows(len(split))
            group_attrs[split.group] = {"shard_rows": canonical_json([lo, hi, len(split)])}
    extra = {"shard": canonical_json({"index": shard.index, "count": shard.count})} if shard else {}
    described = source.describe()
    return FileSpec(
        preset=preset.name,
        preset_version=preset.version,
        params_json=params.to_json(),
        source=described,
        source_digests=described["sha256"],
        datasets=tuple(datasets),
        layout=preset.layout,
        render_json=render.to_json(),
        group_attrs=group_attrs,
        extra_root_attrs=extra,
    )


def build(
    preset: str,
    out: str | Path | None = None,
    *,
    source: str | None = None,
    source_dir: str | Path | None = None,
    root: str | Path | None = None,
    download: bool = True,
    workers: int | None = None,
    shard: str | Shard | None = None,
    materialise: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    **options: Any,
) -> Path:
    """Build a preset into one verified HDF5 file (and its card); returns the file's path.

    `options` are the preset's parameters, e.g. `realisations=6`, `min_scale=0.3`; `source`
    defaults to the preset's first source.
    """
    started = time.perf_counter()
    chosen = get_preset(preset)
    params = chosen.make_params(**options)
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise InvalidParameterError(f"workers: must be >= 1, got {workers}")
    render = chosen.render_spec(params)
    _check_materialise(chosen, render, materialise)
    shard = Shard.parse(shard) if isinstance(shard, str) else shard
    if out is not None:
        check_can_create(Path(out), overwrite)
    data_source = chosen.load_source(
        source,
        Path(source_dir) if source_dir else None,
        Path(root) if root else None,
        download,
        params=params,
    )
    out = Path(out) if out is not None else default_output(chosen.name, data_source.name, shard)
    check_can_create(out, overwrite)
    plan = chosen.plan(params, data_source)
    columns, outputs = _layout(chosen, params, data_source, plan, render, shard, materialise)
    _check_room(out, columns, outputs)
    spec = _file_spec(chosen, params, data_source, plan, render, columns, outputs, shard)
    total_rows = sum(o.shape[0] for o in outputs)
    cores = default_workers()
    if workers is not None and workers > cores:
        log.warning("workers: %d asked, capped at the %d usable core(s)", workers, cores)
    workers = cores if workers is None else min(workers, cores)
    log.info("building %s into %s with %d worker(s)", chosen.name, out, workers)

    with atomic_output(out, overwrite) as tmp, h5py.File(tmp, "w") as h5:
        writer = StreamingWriter(h5, spec)
        for name, values in columns.items():
            writer.write(name, 0, values)
        blocks = [(o.name, start, task, rows) for o in outputs for start, task, rows in _blocks(o)]
        tasks = (
            (render_and_encode, (fn, args, rows, GZIP_LEVEL)) for _, _, (fn, args), rows in blocks
        )
        results = ordered_map(tasks, np.ascontiguousarray(data_source.images), workers)
        done = 0
        for (name, start, _, _), (samples, chunks) in zip(blocks, results, strict=True):
            writer.write(name, start, samples, chunks)
            done += len(samples)
            if progress is not None:
                progress("render", done, total_rows)
        content = writer.finish()
    info = read_info(out)
    write_card(out, info, chosen.summary, chosen.loader_example, chosen.describe(info.params))
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
    chosen = get_preset(info.preset)
    write_card(out, info, chosen.summary, chosen.loader_example, chosen.describe(info.params))
    return out
