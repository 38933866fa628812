"""Benchmark: the full MNIST-Scale build against a per-image Pillow loop rendering the same plan.

Ours is the whole ``scale_datasets.build.build("mnist-scale", ...)`` call: source read, planning,
render, HDF5 write (gzip + fletcher32), hashing and the dataset card, timed for the default
worker count (all cores) and for one worker. The reference, in the same process, renders the
same plan (same source images, same scales) one image at a time through Pillow
(``pil_scale_about_centre``) into a numpy array: render only, which favours the reference. For
context it also times the published SESN approach (Pillow render plus one PNG per image in
``{split}/{label}/{idx}.png`` folders) on one realisation, extrapolated to all of them.

Every figure is wall-clock seconds plus CPU seconds (this process and its finished children),
so noise from other processes on the machine shows as wall >> cpu. Nothing is asserted.

    python benchmarks/bench_build.py              # full: 6 realisations x 62,000 images
    python benchmarks/bench_build.py --quick      # smoke test, well under a minute
    python benchmarks/bench_build.py --json out.json --keep /tmp/bench-build
"""

from __future__ import annotations

import argparse
import cProfile
import math
import os
import pstats
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import h5py
import numpy as np
from _outputs import add_output_options, load_average, run_and_report, yes_no
from _timing import Timing, timed
from PIL import Image

from scale_datasets.build import build
from scale_datasets.ops.scaling import pil_scale_about_centre
from scale_datasets.parallel import default_workers
from scale_datasets.presets.base import Plan, SplitPlan
from scale_datasets.presets.mnist_scale import PRESET, MNISTScaleParams
from scale_datasets.sources import SourceData, load_mnist_like
from scale_datasets.storage.reader import read_info

TARGET_WALL_S = 10.0
TARGET_MB = 100.0

T = TypeVar("T")


def median_of(repeats: int, fn: Callable[[], T]) -> tuple[Timing, list[Timing], T]:
    """Run ``fn`` ``repeats`` times: the median run's timing (by wall), every timing, last value."""
    runs: list[Timing] = []
    value: T | None = None
    for _ in range(max(1, repeats)):
        with timed() as t:
            value = fn()
        runs.append(t)
    assert value is not None
    ordered = sorted(runs, key=lambda t: t.wall_s)
    return ordered[(len(ordered) - 1) // 2], runs, value


def run_build(
    out: Path, source: str, realisations: int, workers: int, profile_top: int = 0
) -> Path:
    """One full build into ``out`` (replaced if present); optionally under cProfile."""
    kwargs: dict[str, Any] = dict(
        source=source, download=False, realisations=realisations, workers=workers, overwrite=True
    )
    if profile_top <= 0:
        return build("mnist-scale", out, **kwargs)
    profiler = cProfile.Profile()
    path = profiler.runcall(build, "mnist-scale", out, **kwargs)
    print(f"\ncProfile of one build with workers={workers} (top {profile_top} by own time):")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(profile_top)
    return path


def n_rendered(split: SplitPlan, fraction: float) -> int:
    """How many leading rows of a split a partial reference run renders (at least one)."""
    return min(len(split), max(1, math.ceil(len(split) * fraction)))


def reference_render(
    plan: Plan, source: SourceData, params: MNISTScaleParams, fraction: float
) -> dict[str, np.ndarray]:
    """The per-image Pillow loop over the plan's (leading ``fraction`` of each) split."""
    rendered: dict[str, np.ndarray] = {}
    images = source.images
    shape = PRESET.sample_shape(params, source)
    for split in plan.splits:
        n = n_rendered(split, fraction)
        index = split.columns["source_index"]
        scales = split.columns["scales"]
        out = np.empty((n, *shape), dtype=np.uint8)
        for j in range(n):
            out[j] = pil_scale_about_centre(
                images[index[j]],
                float(scales[j]),
                params.canvas,
                params.interpolation,
                params.centre,
            )
        rendered[split.group] = out
    return rendered


def sesn_png_write(
    splits: list[SplitPlan],
    source: SourceData,
    params: MNISTScaleParams,
    root: Path,
    fraction: float,
) -> tuple[int, int, int]:
    """SESN-style: Pillow render and one PNG per image in ``root/{split}/{label}/{idx}.png``.

    Returns (images written, files' total bytes, images the splits hold).
    """
    images = source.images
    written = 0
    for split in splits:
        split_dir = os.path.join(root, split.group.rsplit("/", 1)[1])
        labels = split.columns["labels"]
        for label in np.unique(labels).tolist():
            os.makedirs(os.path.join(split_dir, str(label)), exist_ok=True)
        index = split.columns["source_index"]
        scales = split.columns["scales"]
        n = n_rendered(split, fraction)
        for j in range(n):
            pixels = pil_scale_about_centre(
                images[index[j]],
                float(scales[j]),
                params.canvas,
                params.interpolation,
                params.centre,
            )
            Image.fromarray(pixels).save(os.path.join(split_dir, str(labels[j]), f"{j}.png"))
        written += n
    total_bytes = sum(p.stat().st_size for p in Path(root).rglob("*.png"))
    return written, total_bytes, sum(len(s) for s in splits)


def file_matches_plan(path: Path, plan: Plan) -> bool:
    """The per-sample columns stored in the file are exactly the plan's."""
    with h5py.File(path, "r") as h5:
        return all(
            np.array_equal(h5[f"{split.group}/{column}"][:], values)
            for split in plan.splits
            for column, values in split.columns.items()
        )


def reference_equals_file(path: Path, rendered: dict[str, np.ndarray]) -> tuple[bool, int]:
    """Every image the reference loop rendered equals the file's row; (all equal, count)."""
    same, count = True, 0
    with h5py.File(path, "r") as h5:
        for group, ref in rendered.items():
            same &= bool(np.array_equal(h5[f"{group}/images"][: len(ref)], ref))
            count += len(ref)
    return same, count


def sample_check(
    path: Path, source: SourceData, params: MNISTScaleParams, n: int, seed: int
) -> tuple[bool, int]:
    """Pillow on ``n`` random samples of the built file (its own index and scale columns)."""
    same, checked = True, 0
    rng = np.random.default_rng(seed)
    with h5py.File(path, "r") as h5:
        groups = [f"{r}/{s}" for r in sorted(h5) if r.startswith("realisation_") for s in h5[r]]
        sizes = np.array([h5[f"{g}/labels"].shape[0] for g in groups])
        flat = rng.choice(int(sizes.sum()), size=min(n, int(sizes.sum())), replace=False)
        which = np.searchsorted(np.cumsum(sizes), flat, side="right")
        for g, group in enumerate(groups):
            rows = np.sort(flat[which == g] - (np.cumsum(sizes)[g] - sizes[g]))
            if not len(rows):
                continue
            ours = h5[f"{group}/images"][rows]
            index = h5[f"{group}/source_index"][rows]
            scales = h5[f"{group}/scales"][rows]
            for k in range(len(rows)):
                ref = pil_scale_about_centre(
                    source.images[index[k]],
                    float(scales[k]),
                    params.canvas,
                    params.interpolation,
                    params.centre,
                )
                same &= bool(np.array_equal(ours[k], ref))
                checked += 1
    return same, checked


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="fashion-mnist", help="MNIST-like source (no download)")
    parser.add_argument("--realisations", type=int, default=6, help="realisations to build")
    parser.add_argument(
        "--workers", type=int, default=default_workers(), help="workers (default: all cores)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="builds per worker count; the median is reported"
    )
    parser.add_argument(
        "--ref-fraction",
        type=float,
        default=1.0,
        help="fraction of each split the Pillow loop renders (< 1 is extrapolated)",
    )
    parser.add_argument(
        "--png-fraction",
        type=float,
        default=1.0,
        help="fraction of realisation 0 written as PNGs, SESN-style (< 1 is extrapolated)",
    )
    parser.add_argument("--check", type=int, default=1000, help="random samples checked vs PIL")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample check")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="also cProfile a workers=1 build"
    )
    parser.add_argument("--no-png", action="store_true", help="skip the SESN-style PNG run")
    parser.add_argument(
        "--quick", action="store_true", help="1 realisation, 1 repeat, 10%% Pillow loop, 5%% PNGs"
    )
    add_output_options(parser)
    args = parser.parse_args()
    if args.quick:
        args.realisations = 1
        args.repeats = 1
        args.ref_fraction = min(args.ref_fraction, 0.1)
        args.png_fraction = min(args.png_fraction, 0.05)
    for name in ("ref_fraction", "png_fraction"):
        if not 0 < getattr(args, name) <= 1:
            parser.error(f"--{name.replace('_', '-')} must be in (0, 1]")
    return args


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    loadavg_before = os.getloadavg()
    source = load_mnist_like(args.source, download=False)  # also warms the page cache
    params = PRESET.make_params(realisations=args.realisations)
    plan = PRESET.plan(params, source)
    total = sum(len(s) for s in plan.splits)
    per_realisation = total // args.realisations
    print(
        f"MNIST-Scale build benchmark (preset version {PRESET.version}, centre={params.centre}): "
        f"{args.source}, {args.realisations} realisation(s) x "
        f"{per_realisation:,} images = {total:,} images; {default_workers()} core(s) available"
    )

    worker_counts = [args.workers] if args.workers == 1 else [args.workers, 1]
    builds: dict[int, Timing] = {}
    build_runs: dict[int, list[Timing]] = {}
    paths: dict[int, Path] = {}
    for w in worker_counts:
        out = work / f"mnist-scale-{args.source}-w{w}.h5"
        timing, runs, path = median_of(
            args.repeats, lambda o=out, w=w: run_build(o, args.source, args.realisations, w)
        )
        builds[w], build_runs[w], paths[w] = timing, runs, path
        walls = ", ".join(f"{t.wall_s:.2f}" for t in runs)
        print(f"  built with workers={w}: {walls} s wall", flush=True)
    main_path = paths[args.workers]
    file_mb = main_path.stat().st_size / 1e6

    with timed() as t_ref:
        rendered = reference_render(plan, source, params, args.ref_fraction)
    ref_done = sum(len(r) for r in rendered.values())
    ref_scale = total / ref_done
    ref_wall, ref_cpu = t_ref.wall_s * ref_scale, t_ref.cpu_s * ref_scale
    print(f"  reference Pillow loop: {t_ref.wall_s:.2f} s wall on {ref_done:,} images", flush=True)

    png: dict[str, Any] | None = None
    if not args.no_png:
        first = [
            s for s in plan.splits if s.group.startswith(f"realisation_{params.realisations[0]}/")
        ]
        with timed() as t_png:
            written, png_bytes, in_splits = sesn_png_write(
                first, source, params, work / "sesn-png", args.png_fraction
            )
        scale_up = total / written
        png = {
            "measured_images": written,
            "measured_wall_s": t_png.wall_s,
            "measured_cpu_s": t_png.cpu_s,
            "measured_bytes": png_bytes,
            "extrapolated_images": total,
            "extrapolated_wall_s": t_png.wall_s * scale_up,
            "extrapolated_cpu_s": t_png.cpu_s * scale_up,
            "extrapolated_mb": png_bytes * scale_up / 1e6,
            "extrapolation_factor": scale_up,
            "realisation_images": in_splits,
        }
        print(
            f"  SESN-style PNG write: {t_png.wall_s:.2f} s wall on {written:,} images", flush=True
        )

    plan_ok = file_matches_plan(main_path, plan)
    ref_same, ref_compared = reference_equals_file(main_path, rendered)
    sample_same, sampled = sample_check(main_path, source, params, args.check, args.seed)
    shas = {w: read_info(p).content_sha256 for w, p in paths.items()}
    deterministic = len(set(shas.values())) == 1

    if args.profile > 0:
        run_build(work / "profiled.h5", args.source, args.realisations, 1, args.profile)

    ours = builds[args.workers]
    ours_serial = builds[1]
    result: dict[str, Any] = {
        "source": args.source,
        # Version 2 (sklearn's split counts, the `centre` option): content hashes differ from v1.
        "preset_version": PRESET.version,
        "realisations": args.realisations,
        "images": total,
        "cores": default_workers(),
        "repeats": args.repeats,
        "ours": {str(w): asdict(t) for w, t in builds.items()},
        "ours_all_runs": {str(w): [asdict(t) for t in runs] for w, runs in build_runs.items()},
        "reference_render": {
            "measured_images": ref_done,
            "measured_wall_s": t_ref.wall_s,
            "measured_cpu_s": t_ref.cpu_s,
            "wall_s": ref_wall,
            "cpu_s": ref_cpu,
            "extrapolated": ref_done < total,
        },
        "ratio_reference_over_ours": ref_wall / ours.wall_s,
        "ratio_reference_over_ours_workers_1": ref_wall / ours_serial.wall_s,
        "ratio_reference_over_ours_workers_1_cpu": ref_cpu / ours_serial.cpu_s,
        "sesn_png": png,
        "file_mb": file_mb,
        "checks": {
            "pixels_identical_sample": sample_same,
            "sample_size": sampled,
            "reference_loop_equals_file": ref_same,
            "reference_loop_images_compared": ref_compared,
            "file_columns_equal_plan": plan_ok,
            "content_sha256_same_for_all_worker_counts": deterministic,
        },
        "targets": {"wall_s": TARGET_WALL_S, "file_mb": TARGET_MB},
        "loadavg_before": loadavg_before,
        "loadavg_after": os.getloadavg(),
    }
    return result


def report(r: dict[str, Any], workers: int) -> None:
    ref = r["reference_render"]
    lines = [
        "",
        f"{'':52s}{'wall s':>9s}{'cpu s':>9s}{'img/s':>10s}",
    ]
    for w, t in r["ours"].items():
        label = f"ours: full build, workers={w}" + (" (default)" if int(w) == workers else "")
        lines.append(
            f"{label:52s}{t['wall_s']:9.2f}{t['cpu_s']:9.2f}{r['images'] / t['wall_s']:10.0f}"
        )
    note = " (extrapolated)" if ref["extrapolated"] else ""
    lines.append(
        f"{'reference: Pillow loop, render only' + note:52s}"
        f"{ref['wall_s']:9.2f}{ref['cpu_s']:9.2f}{r['images'] / ref['wall_s']:10.0f}"
    )
    png = r["sesn_png"]
    if png is not None:
        lines.append(
            f"{'SESN-style: Pillow + one PNG per image (extrap.)':52s}"
            f"{png['extrapolated_wall_s']:9.2f}{png['extrapolated_cpu_s']:9.2f}"
            f"{png['extrapolated_images'] / png['extrapolated_wall_s']:10.0f}"
        )
    lines += [
        "",
        f"ratio reference / ours (workers={workers}): {r['ratio_reference_over_ours']:.1f}x",
        f"ratio reference / ours (workers=1): {r['ratio_reference_over_ours_workers_1']:.1f}x "
        f"(by CPU seconds: {r['ratio_reference_over_ours_workers_1_cpu']:.1f}x)",
        f"ours: median of {r['repeats']} build(s) per worker count; all runs (wall s): "
        + "; ".join(
            f"workers={w}: " + ", ".join(f"{t['wall_s']:.2f}" for t in runs)
            for w, runs in r["ours_all_runs"].items()
        ),
        "reference and SESN-style figures: one run each",
    ]
    if ref["extrapolated"]:
        lines.append(
            f"  (Pillow loop measured on {ref['measured_images']:,} images, "
            f"{ref['measured_wall_s']:.2f} s, extrapolated to {r['images']:,})"
        )
    if png is not None:
        lines.append(
            f"SESN-style PNG write: measured {png['measured_wall_s']:.2f} s on "
            f"{png['measured_images']:,} images of one realisation, extrapolated "
            f"x{png['extrapolation_factor']:.1f} to {png['extrapolated_images']:,} images: "
            f"{png['extrapolated_wall_s']:.1f} s, {png['extrapolated_mb']:.1f} MB of PNG files"
        )
    c = r["checks"]
    ours_wall = r["ours"][str(workers)]["wall_s"]
    lines += [
        f"file size: {r['file_mb']:.1f} MB",
        "",
        f"pixels identical: {yes_no(c['pixels_identical_sample'])} "
        f"({c['sample_size']:,} random samples of the built file vs Pillow)",
        f"reference loop output equals the built file: "
        f"{yes_no(c['reference_loop_equals_file'])} "
        f"({c['reference_loop_images_compared']:,} images)",
        f"file columns equal the plan: {yes_no(c['file_columns_equal_plan'])}",
        f"same content_sha256 for every worker count: "
        f"{yes_no(c['content_sha256_same_for_all_worker_counts'])}",
        "",
        f"target: < {TARGET_WALL_S:g} s wall for the full build on 2 cores "
        f"(now {ours_wall:.2f} s with workers={workers}: "
        f"{'met' if ours_wall < TARGET_WALL_S else 'NOT met'})",
        f"target: < {TARGET_MB:g} MB "
        f"(now {r['file_mb']:.1f} MB: {'met' if r['file_mb'] < TARGET_MB else 'NOT met'})",
        load_average(r),
    ]
    if r["realisations"] != 6:
        lines.append(f"note: {r['realisations']} realisation(s), not the full 6: a partial run")
    print("\n".join(lines))


def main() -> None:
    args = parse_args()
    if args.keep is not None and (args.keep / "sesn-png").exists():
        shutil.rmtree(args.keep / "sesn-png")
    run_and_report(args, "bench-build-", run, lambda result: report(result, args.workers))


if __name__ == "__main__":
    main()
