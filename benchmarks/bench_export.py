"""Benchmark: the time and size of exporting MNIST Large Scale in its original layout.

The original set is 20 files: the three fixed-scale training files
(``..._sctr1p000_scte1p000.h5``, ``2p000``, ``4p000``) and the 17 test-only files. Here
``mnist-large-scale`` is built from Debian's Fashion-MNIST at training scales 1, 2 and 4 (one
build each), then ``export --format mnist-large-scale`` writes each build's training file, and
the 17 test-only files from the scale-2 build (the test-only files do not depend on the
training scale). Reported: each build's time and size, each export's time and the files'
sizes, and the totals (files gzip level 4 with the shuffle filter, float32 (N, 112, 112, 1)).

    python benchmarks/bench_export.py            # the whole set of 20 files (~12 GB rendered)
    python benchmarks/bench_export.py --quick    # 1,000 train / 200 val digits, scale 2 only
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from _outputs import add_output_options, run_and_report

from scale_datasets.build import build
from scale_datasets.export import export


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small build at scale 2 only")
    add_output_options(parser)
    return parser.parse_args()


def _mb(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    sizes = {"n_train": 1_000, "n_val": 200} if args.quick else {}
    scales = ("2",) if args.quick else ("1", "2", "4")
    rows = []
    for scale in scales:
        t0 = time.perf_counter()
        path = build(
            "mnist-large-scale", work / f"ls{scale}.h5", source="fashion-mnist",
            download=False, train_scale=scale, overwrite=True, **sizes,
        )  # fmt: skip
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        files = export(
            path, work / "export", "mnist-large-scale", test_scales=scale == "2", overwrite=True
        )
        exported = time.perf_counter() - t0
        rows.append(
            {
                "train_scale": scale,
                "build_s": built,
                "build_mb": path.stat().st_size / 1e6,
                "export_s": exported,
                "files": len(files),
                "main_file_mb": _mb(files[:1]),
                "test_files_mb": _mb(files[1:]),
            }
        )
        print(f"scale {scale}: built in {built:.1f} s, exported {len(files)} files in "
              f"{exported:.1f} s", flush=True)  # fmt: skip
    return {"rows": rows, "quick": args.quick, "cores": os.cpu_count()}


def report(r: dict[str, Any]) -> None:
    lines = [
        "",
        "mnist-large-scale from Fashion-MNIST: build, then export --format mnist-large-scale",
        f"{'train scale':>12s}{'build s':>9s}{'build MB':>10s}{'export s':>10s}{'files':>7s}"
        f"{'train file MB':>15s}{'test files MB':>15s}",
    ]
    for x in r["rows"]:
        lines.append(
            f"{x['train_scale']:>12s}{x['build_s']:9.1f}{x['build_mb']:10.1f}{x['export_s']:10.1f}"
            f"{x['files']:7d}{x['main_file_mb']:15.1f}{x['test_files_mb']:15.1f}"
        )
    files = sum(x["files"] for x in r["rows"])
    seconds = sum(x["export_s"] for x in r["rows"])
    mb = sum(x["main_file_mb"] + x["test_files_mb"] for x in r["rows"])
    lines.append(f"total: {files} files, {seconds:.1f} s of export, {mb / 1e3:.2f} GB on disk")
    if r["quick"]:
        lines.append("--quick: small splits, scale 2 only; figures not representative")
    print("\n".join(lines))


def main() -> None:
    run_and_report(parse_args(), "bench-export-", run, report)


if __name__ == "__main__":
    main()
