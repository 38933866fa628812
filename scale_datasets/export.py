"""Export a built file to another project's on-disk layout, so code written for it runs unchanged.

``mnist-large-scale``: the layout of Jansson & Lindeberg's MNIST Large Scale files (PROTOCOLS.md
section 5), from an ``mnist-large-scale`` build:

* ``mnist_large_scale_tr{N}_vl{N}_te{N}_outsize112-112_sctr{S}_scte{S}.h5``: the realisation's
  train, val and test splits at the training scale S (``1p000-4p000`` for the 1-4 law);
* ``mnist_large_scale_te{N}_outsize112-112_scte{S}.h5`` for each of the 17 test scales: every
  test digit at that scale, with one dummy sample (the background value) in train and val, as
  the originals have.

Each file holds ``/x_train``, ``/x_val``, ``/x_test`` float32 (N, H, W, 1) (channels last) and
``/y_train``, ``/y_val``, ``/y_test`` int64 (N,); samples are rendered through `ScaleDataset`
exactly as training reads them. Every file is written to a temporary name and renamed when
complete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .errors import InvalidParameterError
from .storage.atomic import atomic_output, check_can_create
from .storage.format import SPLITS
from .storage.reader import read_info

__all__ = ["EXPORT_FORMATS", "export", "large_scale_file_names"]

Progress = Callable[[str, int, int], None]
_BATCH = 256
_CHUNK_ROWS = 32


def _scale_tag(scale: float) -> str:
    return f"{scale:.3f}".replace(".", "p")


def large_scale_file_names(
    train_scale: str, sizes: tuple[int, int, int], canvas: int, test_scales: tuple[float, ...]
) -> tuple[str, list[str]]:
    """The main file's name and the test-only files' names, as the original set names them."""
    if train_scale == "1-4":
        tag = f"{_scale_tag(1.0)}-{_scale_tag(4.0)}"
    else:
        tag = _scale_tag(float(train_scale))
    n_tr, n_vl, n_te = sizes
    size = f"outsize{canvas}-{canvas}"
    main = f"mnist_large_scale_tr{n_tr}_vl{n_vl}_te{n_te}_{size}_sctr{tag}_scte{tag}.h5"
    tests = [f"mnist_large_scale_te{n_te}_{size}_scte{_scale_tag(s)}.h5" for s in test_scales]
    return main, tests


@dataclass(frozen=True)
class _Part:
    name: str  # "train", "val" or "test"
    rows: int
    batches: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]  # (x (B, H, W), y (B,))


def _dataset_batches(ds: object, rows: np.ndarray) -> Callable[[], Iterator]:
    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(rows), _BATCH):
            items = ds.__getitems__(rows[start : start + _BATCH].tolist())  # type: ignore[attr-defined]
            x = np.stack([item[0].numpy()[0] for item in items])
            y = np.array([item[1] for item in items], dtype=np.int64)
            yield x, y

    return batches


def _dummy(canvas: int, background: float) -> Callable[[], Iterator]:
    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield np.full((1, canvas, canvas), background, np.float32), np.zeros(1, np.int64)

    return batches


def _write_file(
    out: Path, parts: list[_Part], canvas: int, overwrite: bool, tick: Callable[[int], None]
) -> None:
    with atomic_output(out, overwrite) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["created_by"] = "scale-datasets export --format mnist-large-scale"
        for part in parts:
            shape = (part.rows, canvas, canvas, 1)
            x = h5.create_dataset(
                f"x_{part.name}",
                shape,
                np.float32,
                chunks=(min(_CHUNK_ROWS, part.rows), canvas, canvas, 1),
                compression="gzip",
                compression_opts=4,
                shuffle=True,
            )
            y = h5.create_dataset(f"y_{part.name}", (part.rows,), np.int64)
            at = 0
            for xb, yb in part.batches():
                x[at : at + len(xb)] = xb[..., None]
                y[at : at + len(yb)] = yb
                at += len(xb)
                tick(len(xb))


def export_mnist_large_scale(
    path: Path,
    out: Path,
    *,
    realisation: int = 0,
    test_scales: bool = True,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> list[Path]:
    """Write the original layout into the folder ``out`` (created if missing); returns the
    files written, the main file first."""
    from .datasets import ScaleDataset
    from .ops.large_scale import BACKGROUND, TEST_SCALES

    info = read_info(path)
    if info.preset != "mnist-large-scale":
        raise InvalidParameterError(
            f"format: mnist-large-scale exports mnist-large-scale files; {path} is {info.preset}"
        )
    if realisation not in info.realisations:
        raise InvalidParameterError(
            f"realisation: {path} holds realisations {sorted(info.realisations)}, not {realisation}"
        )
    if out.exists() and not out.is_dir():
        raise InvalidParameterError(f"out: {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    canvas = int(info.params["canvas"])
    splits = {s: ScaleDataset(path, s, realisation) for s in SPLITS}
    sizes = tuple(len(ds) for ds in splits.values())
    main, tests = large_scale_file_names(info.params["train_scale"], sizes, canvas, TEST_SCALES)
    targets = [out / main] + ([out / t for t in tests] if test_scales else [])
    for target in targets:  # before any work
        check_can_create(target, overwrite)
    n_test = sizes[2]
    total = sum(sizes) + (len(tests) * (n_test + 2) if test_scales else 0)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress("export", done, total)

    parts = [
        _Part(s, len(ds), _dataset_batches(ds, np.arange(len(ds)))) for s, ds in splits.items()
    ]
    _write_file(out / main, parts, canvas, overwrite, tick)
    if test_scales:
        grid = ScaleDataset(path, "test", realisation, scales=TEST_SCALES)
        for k, name in enumerate(tests):
            rows = k * n_test + np.arange(n_test)
            parts = [
                _Part("train", 1, _dummy(canvas, BACKGROUND)),
                _Part("val", 1, _dummy(canvas, BACKGROUND)),
                _Part("test", n_test, _dataset_batches(grid, rows)),
            ]
            _write_file(out / name, parts, canvas, overwrite, tick)
    return targets


EXPORT_FORMATS: dict[str, Callable[..., list[Path]]] = {
    "mnist-large-scale": export_mnist_large_scale,
}


def export(
    path: str | Path,
    out: str | Path,
    format: str,
    *,
    realisation: int = 0,
    test_scales: bool = True,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> list[Path]:
    """Export ``path`` in ``format`` into the folder ``out``; returns the files written."""
    try:
        writer = EXPORT_FORMATS[format]
    except KeyError:
        raise InvalidParameterError(
            f"format: unknown export format {format!r}; known: {', '.join(EXPORT_FORMATS)}"
        ) from None
    return writer(
        Path(path),
        Path(out),
        realisation=realisation,
        test_scales=test_scales,
        overwrite=overwrite,
        progress=progress,
    )
