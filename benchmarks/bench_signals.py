"""Benchmark: a signals-1d epoch through ScaleDataset against a per-item rfft / irfft Dataset.

``signals-1d`` is built from two UCR/UEA problems packaged with the aeon wheel (nothing is
downloaded): OSULeaf (442 series of 427 values, 6 classes; train 160, test 242 at the default
80 / 20 carve of the archive's train part) and GunPoint (200 x 150, 2 classes; train 40, test
150), each with the preset's default lengths n = N // 4..N in equal groups per split. For the
train and test splits, one epoch through ``DataLoader(num_workers=0)`` at batch 32 and 128:

* ours: ``ScaleDataset(path, split)`` (layout on-access: the split's float64 pool rows in memory,
  each batch rendered in ``__getitems__`` with one batched rfft / irfft per native length) with
  ``ResolutionBatchSampler(ds, batch_size=B, shuffle=True, generator=0)``;
* theirs, the published approach written out here from the definition of D_n (not our
  ``resample_1d``): a map-style Dataset holding the same pool series (read with h5py: /base and
  the split's columns) whose ``__getitem__`` runs ``torch.fft.rfft(x, norm="forward")`` on one
  series at its own length L, keeps the modes |k| <= (min(L, n) - 1) // 2, zero-fills to
  n // 2 + 1, ``torch.fft.irfft(..., n=n, norm="forward")``, float32 out; default collate.

Both loaders read the same batch lists (the sampler's epoch, materialised once). Every item of a
few batches is checked equal (allclose, atol 1e-5; identical labels and shapes) before anything
is timed. After one untimed warm-up epoch each, every loader is timed ``--repeats`` times, the
loaders interleaved; one timing is the mean epoch of whole epochs repeated for at least
``--min-seconds`` (0.25 s: an epoch of these splits lasts milliseconds). The median (and best)
is reported (CPU seconds too, in the JSON). With the default lengths almost every item of these
small splits has a length of its own, so the sampler's batches hold about one item whatever the
batch size: the output gives the mean batch and, for information, the same epoch with every item
at one length (``ScaleDataset(path, split, resolution=n)``, n the split's median length, both
sides), where batches are full. ``--profile N`` adds a cProfile of our epochs. torch runs on one
thread (``--threads`` to change). Nothing is asserted on time.

    python benchmarks/bench_signals.py              # full: OSULeaf and GunPoint, 3 repeats
    python benchmarks/bench_signals.py --quick      # GunPoint only, 1 repeat, seconds
    python benchmarks/bench_signals.py --profile 15 --json out.json --keep /tmp/bench-signals
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
from _outputs import add_output_options, compare_batches, run_and_report, yes_no
from _timing import Timing, loader_epoch, rate_summary, torch_threads

from scale_datasets.build import build
from scale_datasets.storage.format import BASE_GROUP, realisation_group

# torch, ScaleDataset and the sampler are imported inside the functions that use them: build()
# starts its workers with "spawn", which re-imports this script in each worker.
if TYPE_CHECKING:
    import torch
    from torch.utils.data import Dataset

TARGET_RATIO = 10.0
ATOL = 1e-5
# (source name for build(), archive name): the problems timed; --quick keeps the last.
PROBLEMS = (("osuleaf", "OSULeaf"), ("gunpoint", "GunPoint"))
SPLITS_TIMED = ("train", "test")


def reference_resample_1d(x: torch.Tensor, n: int) -> torch.Tensor:
    """D_n of one series (C, L) -> float32 (C, n), written out from the definition.

    rfft (norm "forward"), keep |k| <= (min(L, n) - 1) // 2 (the first m + 1 modes of the half
    spectrum), zero-fill to n // 2 + 1, irfft on n points (norm "forward").
    """
    import torch

    length = x.shape[-1]
    m = (min(length, n) - 1) // 2
    half = torch.fft.rfft(x, norm="forward")
    out = half.new_zeros((*x.shape[:-1], n // 2 + 1))
    out[..., : m + 1] = half[..., : m + 1]
    return torch.fft.irfft(out, n=n, norm="forward").to(torch.float32)


def reference_dataset(path: Path, split: str, length: int | None = None) -> Dataset:
    """The published approach: the pool's series in memory, D_n of one series per item.

    Reads the file with h5py directly (the float64 pool under /base, NaN-padded at the end for
    variable-length problems, and the split's plan columns), not through our Dataset. `length`
    puts every item at that one length (as ``ScaleDataset(resolution=length)`` does).
    """
    import torch
    from torch.utils.data import Dataset

    key = f"{realisation_group(0)}/{split}"
    with h5py.File(path, "r") as h5:
        pool = h5[f"{BASE_GROUP}/images"][:]
        index = h5[f"{key}/source_index"][:]
        labels = h5[f"{key}/labels"][:]
        lengths = h5[f"{key}/resolutions"][:]
    if length is not None:
        lengths = np.full_like(lengths, length)
    native = (~np.isnan(pool[:, 0, :])).sum(axis=-1)  # each series' own length

    class PerItemFourier1D(Dataset):
        def __init__(self) -> None:
            self.series = [torch.from_numpy(pool[i, :, : native[i]].copy()) for i in index]
            self.labels = labels
            self.lengths = lengths

        def __len__(self) -> int:
            return len(self.labels)

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            return reference_resample_1d(self.series[i], int(self.lengths[i])), int(self.labels[i])

    return PerItemFourier1D()


def open_ours(path: Path, split: str, length: int | None = None) -> Dataset:
    from scale_datasets import ScaleDataset

    return ScaleDataset(path, split, realisation=0, resolution=length)


def epoch_batches(dataset: Any, batch_size: int) -> list[list[int]]:
    """The sampler's batches for epoch 0 (shuffled, seed 0), materialised once for both."""
    from scale_datasets import ResolutionBatchSampler

    return list(ResolutionBatchSampler(dataset, batch_size=batch_size, shuffle=True, generator=0))


def timed_epochs(dataset: Dataset, batches: list[list[int]], min_seconds: float) -> Timing:
    """Whole epochs, repeated until ``min_seconds`` have passed (these epochs last milliseconds):
    the mean wall and CPU seconds of one epoch."""
    total_wall, total_cpu, count = 0.0, 0.0, 0
    while count == 0 or total_wall < min_seconds:
        timing, _ = loader_epoch(dataset, batches)
        total_wall += timing.wall_s
        total_cpu += timing.cpu_s
        count += 1
    return Timing(total_wall / count, total_cpu / count)


def time_case(
    path: Path,
    split: str,
    batch_size: int,
    args: argparse.Namespace,
    length: int | None,
) -> dict[str, Any]:
    """Checks, one untimed warm-up epoch each, then ``repeats`` interleaved epochs per loader."""
    ours = open_ours(path, split, length)
    ref = reference_dataset(path, split, length)
    batches = epoch_batches(ours, batch_size)
    checks = compare_batches(ours, ref, batches, ours.resolutions, args.check_batches, ATOL)
    checks["lengths"] = checks.pop("resolutions")
    loader_epoch(ref, batches)
    _, images = loader_epoch(ours, batches)
    runs: dict[str, list[Timing]] = {"theirs": [], "ours": []}
    for _ in range(args.repeats):
        for name, dataset in (("theirs", ref), ("ours", ours)):
            runs[name].append(timed_epochs(dataset, batches, args.min_seconds))
    loaders = {name: {"loader": name, **rate_summary(images, runs[name])} for name in runs}
    return {
        "batch_size": batch_size,
        "length": "plan" if length is None else int(length),
        "batches": len(batches),
        "mean_batch": images / len(batches),
        "images": images,
        "checks": checks,
        "ours": loaders["ours"],
        "theirs": loaders["theirs"],
        "ratio": loaders["ours"]["images_per_s_median"] / loaders["theirs"]["images_per_s_median"],
    }


def profile_epoch(path: Path, split: str, batch_size: int, top: int, epochs: int = 20) -> str:
    """cProfile of `epochs` of our epochs (planned lengths), top functions by own time."""
    import io

    ours = open_ours(path, split)
    batches = epoch_batches(ours, batch_size)
    loader_epoch(ours, batches)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(epochs):
        loader_epoch(ours, batches)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--repeats", type=int, default=3, help="epochs per loader (interleaved)")
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=0.25,
        help="each timed epoch is repeated until this long and averaged (epochs last ms)",
    )
    parser.add_argument("--check-batches", type=int, default=3, help="batches checked equal")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1; 0 keeps torch's)"
    )
    parser.add_argument(
        "--no-one-length",
        action="store_true",
        help="skip the rows with every item at the split's median length (for information)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also cProfile our epochs on the first problem's train split (top N by own time)",
    )
    parser.add_argument("--quick", action="store_true", help="GunPoint only, 1 repeat")
    add_output_options(parser)
    args = parser.parse_args()
    if args.quick:
        args.repeats = 1
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import torch

    threads = torch_threads(args.threads)
    loadavg_before = os.getloadavg()
    problems = PROBLEMS[-1:] if args.quick else PROBLEMS
    cases: list[dict[str, Any]] = []
    profile = ""
    for source, name in problems:
        t0 = time.perf_counter()
        path = build(
            "signals-1d",
            work / f"signals-1d-{source}.h5",
            source=source,
            download=False,
            overwrite=True,
        )
        build_s = time.perf_counter() - t0
        with h5py.File(path, "r") as h5:
            pool_shape = list(h5[f"{BASE_GROUP}/images"].shape)
        print(f"built signals-1d from {name} in {build_s:.1f} s: pool {pool_shape}", flush=True)
        for split in SPLITS_TIMED:
            lengths = open_ours(path, split).resolutions
            case: dict[str, Any] = {
                "problem": name,
                "split": split,
                "pool_shape": pool_shape,
                "build_s": build_s,
                "images": len(lengths),
                "lengths": [int(lengths.min()), int(lengths.max())],
                "distinct_lengths": len(np.unique(lengths)),
                "rows": [],
            }
            fixed = [None] if args.no_one_length else [None, int(np.median(lengths))]
            for length in fixed:
                for bs in args.batch_sizes:
                    row = time_case(path, split, bs, args, length)
                    case["rows"].append(row)
                    print(
                        f"  {name} {split} batch {bs} lengths {row['length']}: ours "
                        f"{row['ours']['images_per_s_median']:,.0f} img/s, theirs "
                        f"{row['theirs']['images_per_s_median']:,.0f} img/s "
                        f"({row['ratio']:.2f}x)",
                        flush=True,
                    )
            cases.append(case)
        if args.profile > 0 and not profile:
            profile = profile_epoch(path, "train", args.batch_sizes[0], args.profile)
    return {
        "cores": os.cpu_count(),
        "torch_threads": threads,
        "torch_version": torch.__version__,
        "repeats": args.repeats,
        "min_seconds": args.min_seconds,
        "quick": args.quick,
        "cases": cases,
        "profile": profile,
        "target_ratio": TARGET_RATIO,
        "loadavg_before": loadavg_before,
        "loadavg_after": os.getloadavg(),
    }


def report(r: dict[str, Any]) -> None:
    lines = [
        "",
        "one epoch through DataLoader(num_workers=0, batch_sampler=the same batch lists for both "
        f"loaders); {r['cores']} core(s), torch {r['torch_version']} with {r['torch_threads']} "
        "thread(s)",
        f"img/s: median (best) of {r['repeats']} timing(s) per loader, loaders interleaved, after "
        f"one warm-up epoch each; each timing is the mean epoch of whole epochs repeated for >= "
        f"{r['min_seconds']:g} s; ratio: ours / theirs (medians)",
        "ours: ScaleDataset + ResolutionBatchSampler; theirs: per-item rfft / irfft Dataset, "
        "default collate",
        "",
        f"{'problem':9s}{'split':6s}{'batch':>6s}{'lengths':>9s}{'batches':>8s}{'mean B':>7s}"
        f"{'ours img/s':>12s}{'(best)':>9s}{'theirs img/s':>14s}{'(best)':>9s}{'ratio':>8s}",
    ]
    planned: list[tuple[float, str]] = []
    notes: list[str] = []
    for c in r["cases"]:
        for row in c["rows"]:
            o, t = row["ours"], row["theirs"]
            lines.append(
                f"{c['problem']:9s}{c['split']:6s}{row['batch_size']:6d}"
                f"{('n=' + str(row['length'])) if row['length'] != 'plan' else 'plan':>9s}"
                f"{row['batches']:8d}{row['mean_batch']:7.1f}"
                f"{o['images_per_s_median']:12,.0f}{o['images_per_s_best']:9,.0f}"
                f"{t['images_per_s_median']:14,.0f}{t['images_per_s_best']:9,.0f}"
                f"{row['ratio']:7.2f}x"
            )
            if row["length"] == "plan":
                planned.append(
                    (row["ratio"], f"{c['problem']} {c['split']} batch {row['batch_size']}")
                )
            k = row["checks"]
            if not (k["allclose"] and k["labels_identical"] and k["shapes_ok"]):
                notes.append(f"  OUTPUTS DIFFER: {c['problem']} {c['split']} {row}")
        lo, hi = c["lengths"]
        first = c["rows"][0]["checks"]
        lines.append(
            f"{'':15s}{c['images']} items, n = {lo}..{hi} ({c['distinct_lengths']} distinct), "
            f"pool {' x '.join(map(str, c['pool_shape']))} float64; checked "
            f"{first['items']} items of {first['batches']} batches: max |diff| "
            f"{max(x['checks']['max_abs_diff'] for x in c['rows']):.1e}"
        )
    checks = [row["checks"] for c in r["cases"] for row in c["rows"]]
    all_ok = all(k["allclose"] and k["labels_identical"] and k["shapes_ok"] for k in checks)
    lines += [
        "",
        f"outputs equal (allclose atol {ATOL:g}, labels identical, shapes (B, C, n)) on every "
        f"checked batch: {yes_no(all_ok)}; max |diff| "
        f"{max(k['max_abs_diff'] for k in checks):.1e} over "
        f"{sum(k['items'] for k in checks)} items",
        *notes,
    ]
    low, where = min(planned)
    high, where_high = max(planned)
    lines += [
        "",
        f"target >= {r['target_ratio']:g}x: {'met' if low >= r['target_ratio'] else 'NOT met'} "
        f"(planned lengths; worst row {low:.2f}x, {where}; best row {high:.2f}x, {where_high})",
        f"load average before {r['loadavg_before'][0]:.2f}, after {r['loadavg_after'][0]:.2f}",
    ]
    if r["profile"]:
        lines += ["", "cProfile of our epochs (train split of the first problem):", r["profile"]]
    print("\n".join(lines))


def main() -> None:
    run_and_report(parse_args(), "bench-signals-", run, report)


if __name__ == "__main__":
    main()
