"""What the data benchmarks share: where outputs go, how two loaders' outputs are checked equal,
and how figures are printed and saved.

No torch at import: build() starts "spawn" workers that re-import the benchmark script.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from PIL import Image


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """--json PATH and --keep DIR, which run_and_report reads."""
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--keep", type=Path, help="write outputs here and keep them")


def write_json(path: str | Path, figures: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(f"figures written to {path}")


def run_and_report(
    args: argparse.Namespace,
    prefix: str,
    run: Callable[[argparse.Namespace, Path], dict[str, Any]],
    report: Callable[[dict[str, Any]], None],
) -> None:
    """run(args, work) in `--keep DIR` or a temporary folder, print its report, and write the
    figures to `--json PATH` when asked."""
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            result = run(args, Path(tmp))
    report(result)
    if args.json is not None:
        write_json(args.json, result)


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def load_average(r: dict[str, Any]) -> str:
    """``r["loadavg_before"]`` and ``r["loadavg_after"]`` (1, 5 and 15 minutes) in one line."""

    def three(loads: list[float]) -> str:
        return " ".join(f"{x:.2f}" for x in loads)

    return (
        f"load average before / after: {three(r['loadavg_before'])} / {three(r['loadavg_after'])}"
    )


def write_image_folder(path: Path, group: str, root: Path) -> tuple[int, int]:
    """The uint8 images of ``group`` in a built file as ``root/{label}/{i}.png``, the layout
    torchvision's ImageFolder reads; returns (images, bytes written)."""
    with h5py.File(path, "r") as h5:
        images = h5[f"{group}/images"][:]
        labels = h5[f"{group}/labels"][:]
    for label in np.unique(labels).tolist():
        (root / str(label)).mkdir(parents=True, exist_ok=True)
    written = 0
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        png = root / str(int(label)) / f"{i}.png"
        Image.fromarray(image).save(png)
        written += png.stat().st_size
    return len(images), written


def compare_batches(
    ours: Any,
    ref: Any,
    batches: list[list[int]],
    resolutions: np.ndarray,
    count: int,
    atol: float,
) -> dict[str, Any]:
    """Every item of ``count`` batches (the first ones, plus those of the smallest and largest
    resolution), through ``DataLoader(batch_sampler=...)`` on both sides: allclose (rtol 0,
    ``atol``), identical labels, and float32 of the same shape (B, C, r, ...) on both sides,
    with r the batch's resolution on every axis after the channels."""
    import torch
    from torch.utils.data import DataLoader

    by_r = [int(resolutions[b[0]]) for b in batches]
    chosen = sorted(
        {*range(min(count, len(batches))), by_r.index(min(by_r)), by_r.index(max(by_r))}
    )
    picked = [batches[i] for i in chosen]
    same, labels_same, shapes_ok, max_diff, items = True, True, True, 0.0, 0
    ours_loader = DataLoader(ours, batch_sampler=picked)
    ref_loader = DataLoader(ref, batch_sampler=picked)
    for batch, (xo, yo), (xr, yr) in zip(picked, ours_loader, ref_loader, strict=True):
        r = int(resolutions[batch[0]])
        comparable = xo.shape == xr.shape and xo.dtype == xr.dtype == torch.float32
        shapes_ok &= comparable and xo.shape[0] == len(batch) and set(xo.shape[2:]) == {r}
        if comparable:
            same &= torch.allclose(xo, xr, rtol=0, atol=atol)
            max_diff = max(max_diff, float((xo - xr).abs().max()))
        else:
            same = False
        labels_same &= torch.equal(yo, yr)
        items += len(batch)
    return {
        "batches": len(picked),
        "items": items,
        "resolutions": sorted({by_r[i] for i in chosen}),
        "allclose": bool(same),
        "labels_identical": bool(labels_same),
        "shapes_ok": bool(shapes_ok),
        "max_abs_diff": max_diff,
    }
