"""Benchmark: a Dynamic Scale MNIST epoch through ScaleDataset against Basting et al.'s loader.

One realisation of ``dynamic-mnist`` (``loguniform(1, 8)``, 168 x 168 canvas) is built from
Debian's Fashion-MNIST, then one epoch of the 10,000-image train split goes through
``DataLoader(batch_size=128, num_workers=W)`` for W in 0 and 2 (workers started with the
platform's default method, fork on Linux, unless ``--start-method`` says otherwise):

* ours: ``ScaleDataset(path, "train", transform=Normalize((ds.mean,), (ds.std,)))``: the split's
  uint8 digits in memory, each batch rendered at once (``__getitems__``: numpy, only each digit's
  support, bit-identical to Pillow), then Normalize per item;
* theirs, Basting et al.'s per-item pipeline written out here: the same 10,000 digits written
  first as 28 x 28 PNG files (as their pipeline has them), and per item in ``__getitem__``: PIL
  open + decode, zero-pad to 168 x 168 (``F.pad(img, 70)``: the digit centred), torchvision
  ``F.affine(img, angle=0, translate=[0, 0], scale=s, shear=[0, 0], interpolation=BICUBIC)``
  with the item's stored float32 scale, ``ToTensor()``, ``Normalize(mean, std)``; default
  collate. Their code also converts each image to RGB (result discarded) and applies
  ``Grayscale()``; both are left out here, which favours the reference.

Before anything is timed, the first ``--check-batches`` batches (unshuffled) and one batch of
the largest scales are compared: labels identical, every pixel within 1 / 255 / std (one grey
level after Normalize), and the uint8 renders themselves (Pillow through torchvision against our
numpy renderer) compared exactly. torchvision's ``_get_inverse_affine_matrix`` with the centre
``F.affine`` uses for PIL images (``[w * 0.5, h * 0.5]``) is compared bit for bit with our
``affine_coefficients`` for those scales.

Images/s EXCLUDE start-up, as in bench_loader: the clock starts when the first batch has
arrived; start-up (worker start plus one batch) and whole-epoch rates are reported too. Epochs
are repeated ``--repeats`` times with the loaders interleaved (median and best; CPU seconds of
this process and its reaped workers per epoch, so a noisy run shows). Peak resident memory of
each loader with 0 workers is measured in a fresh process (``_memory.py``). Also: the build time
and file size of a 1-realisation and a 3-realisation build, and the per-scale evaluation grid
``ScaleDataset(path, "test", scales=np.logspace(-1, 3.5, 45, base=2))`` read in batches of 128
(``num_workers=0``) over its first 20,000 items (all at the smallest scale, 0.5: the grid is
scale-major) and over 20,000 items spread over all 45 scales; the paper's 2.25M-item grid is
extrapolated from those rates (the output says so). Nothing is asserted on time.

torch runs on one thread unless ``--threads`` says otherwise (as bench_multires): DataLoader
workers run torch on one thread each anyway, so this keeps W = 0 comparable with W = 2, and on a
2-core machine shared with other work two OpenMP threads made the same epoch swing by up to 30x
between repeats in bench_multires. Our render is numpy (one thread either way).

    python benchmarks/bench_dynamic.py              # full: 10k train, 3-realisation build too
    python benchmarks/bench_dynamic.py --quick      # smoke test, well under a minute
    python benchmarks/bench_dynamic.py --json out.json --keep /tmp/bench-dynamic
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
from _outputs import add_output_options, run_and_report, yes_no
from _timing import cpu_seconds, timed, torch_threads
from PIL import Image

from scale_datasets.build import build
from scale_datasets.parallel import default_workers
from scale_datasets.storage.format import BASE_GROUP, realisation_group
from scale_datasets.storage.reader import read_info

# torch, torchvision, ScaleDataset and _memory (which import torch) are imported inside the
# functions that use them: build() starts its workers with "spawn", which re-imports this script
# in each worker, and a module-level torch import would add seconds of start-up to every worker.
if TYPE_CHECKING:
    import torch

TARGET_RATIO = 20.0
CANVAS = 168
DIGIT = 28
PAD = (CANVAS - DIGIT) // 2  # 70: the digit centred on the canvas
GRID = np.logspace(-1, 3.5, 45, base=2)  # the paper's per-scale evaluation grid
PAPER_GRID_ITEMS = 50_000 * len(GRID)  # 2.25M


class BastingPNGDataset:
    """Basting et al.'s per-item loader: one PNG per digit, padded, scaled by torchvision.

    A plain map-style dataset (the DataLoader needs only ``__len__`` and ``__getitem__``), so this
    module need not import torch at the top; it pickles for spawned workers too.
    """

    def __init__(
        self,
        paths: list[str],
        labels: np.ndarray,
        scales: np.ndarray,
        mean: float,
        std: float,
        pad: int = PAD,
    ) -> None:
        from torchvision.transforms import Normalize, ToTensor

        self.paths = paths
        self.labels = [int(x) for x in labels]
        self.scales = [float(s) for s in scales]  # the stored float32 values as Python floats
        self.pad = pad
        self.to_tensor = ToTensor()
        self.normalize = Normalize((mean,), (std,))

    def __len__(self) -> int:
        return len(self.paths)

    def scaled_image(self, i: int) -> Image.Image:
        """The item's PIL image after pad and affine (before ToTensor)."""
        import torchvision.transforms.functional as F
        from torchvision.transforms import InterpolationMode

        with open(self.paths[i], "rb") as fh:
            img = Image.open(fh)
            img.load()  # decode now, while the file is open
        if self.pad:
            img = F.pad(img, self.pad)
        return F.affine(
            img,
            angle=0,
            translate=[0, 0],
            scale=self.scales[i],
            shear=[0, 0],
            interpolation=InterpolationMode.BICUBIC,
        )

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.normalize(self.to_tensor(self.scaled_image(i))), self.labels[i]


class ReadyTensors:
    """Hands out ready-made zero samples (1, 168, 168) float32 and label 0, no render: what the
    DataLoader alone costs to collate (and, with workers, to pass through shared memory)."""

    def __init__(self, n: int) -> None:
        import torch

        self.n = n
        self.sample = torch.zeros(1, CANVAS, CANVAS)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.sample.clone(), 0

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        return [(self.sample.clone(), 0) for _ in indices]


# --- data ---------------------------------------------------------------------------------


def split_columns(path: Path, split: str, digits: bool = True) -> dict[str, np.ndarray]:
    """The split's labels and stored scales, and its digits (uint8 (N, 28, 28)) with
    ``digits``, read with h5py (not through our Dataset)."""
    key = f"{realisation_group(0)}/{split}"
    with h5py.File(path, "r") as h5:
        out = {"labels": h5[f"{key}/labels"][:], "scales": h5[f"{key}/scales"][:]}
        if digits:
            index = h5[f"{key}/source_index"][:]
            out["digits"] = h5[f"{BASE_GROUP}/images"][:][index]
    return out


def write_pngs(digits: np.ndarray, labels: np.ndarray, root: Path, padded: bool) -> list[str]:
    """One PNG per digit, ``root/{label}/{i}.png`` in index order (28 x 28, or already padded to
    the canvas with ``padded``); returns the paths."""
    paths = []
    for label in np.unique(labels).tolist():
        (root / str(label)).mkdir(parents=True, exist_ok=True)
    for i, (digit, label) in enumerate(zip(digits, labels, strict=True)):
        if padded:
            digit = np.pad(digit, PAD)
        p = root / str(int(label)) / f"{i}.png"
        Image.fromarray(digit).save(p)
        paths.append(str(p))
    return paths


def theirs_dataset(path: Path, root: Path, mean: float, std: float, padded: bool) -> Any:
    """Basting's dataset over PNGs already written to ``root`` (paths rebuilt from the labels)."""
    cols = split_columns(path, "train", digits=False)
    paths = [str(root / str(int(lab)) / f"{i}.png") for i, lab in enumerate(cols["labels"])]
    return BastingPNGDataset(paths, cols["labels"], cols["scales"], mean, std, 0 if padded else PAD)


def ours_dataset(path: Path) -> Any:
    from torchvision.transforms import Normalize

    from scale_datasets import ScaleDataset

    ds = ScaleDataset(path, "train")
    ds.transform = Normalize((ds.mean,), (ds.std,))
    return ds


# --- checks -------------------------------------------------------------------------------


def matrix_check(scales: list[float]) -> dict[str, Any]:
    """torchvision's PIL matrix (centre [w * 0.5, h * 0.5], as F.affine sets it for PIL images)
    against our affine_coefficients on the canvas, bit for bit."""
    import torchvision
    from torchvision.transforms.functional import _get_inverse_affine_matrix

    from scale_datasets.ops.pil_affine import affine_coefficients

    centre = [CANVAS * 0.5, CANVAS * 0.5]
    same = all(
        tuple(_get_inverse_affine_matrix(centre, 0.0, [0.0, 0.0], s, [0.0, 0.0]))
        == affine_coefficients(s, (CANVAS, CANVAS), (CANVAS, CANVAS))
        for s in scales
    )
    return {"torchvision": torchvision.__version__, "centre": centre, "identical": same}


def check_outputs(ours: Any, theirs: BastingPNGDataset, batches: list[list[int]]) -> dict:
    """Every item of the given batches: labels, normalised pixels (within one grey level) and
    the uint8 renders (exact)."""
    import torch
    from torch.utils.data import DataLoader

    from scale_datasets.ops.canvas import scale_on_canvas

    std = float(ours.std)
    tol = 1 / 255 / std
    ours_loader = DataLoader(ours, batch_sampler=batches, num_workers=0)
    theirs_loader = DataLoader(theirs, batch_sampler=batches, num_workers=0)
    max_diff, items, labels_ok, within, differ = 0.0, 0, True, True, 0
    uint8_max, uint8_differ = 0, 0
    digits = split_columns(Path(ours.path), "train")["digits"]
    for idx, (xo, yo), (xt, yt) in zip(batches, ours_loader, theirs_loader, strict=True):
        labels_ok &= torch.equal(yo, yt)
        diff = (xo - xt).abs()
        max_diff = max(max_diff, float(diff.max()))
        within &= bool((diff <= tol).all())
        differ += int((diff > 0).sum())
        items += len(idx)
        # the renders before ToTensor/Normalize: Pillow through torchvision against ours
        pil = np.stack([np.asarray(theirs.scaled_image(i)) for i in idx])
        mine = scale_on_canvas(digits[idx], ours.scales[idx], canvas=CANVAS)
        d = np.abs(pil.astype(np.int16) - mine.astype(np.int16))
        uint8_max = max(uint8_max, int(d.max()))
        uint8_differ += int((d > 0).sum())
    scales = sorted({float(ours.scales[i]) for b in batches for i in b})
    return {
        "batches": len(batches),
        "items": items,
        "scale_range": [scales[0], scales[-1]],
        "labels_identical": bool(labels_ok),
        "tolerance": tol,
        "max_abs_diff": max_diff,
        "max_diff_grey_levels": max_diff * std * 255,
        "within_one_grey_level": bool(within),
        "pixels_differing": differ,
        "pixels": items * CANVAS * CANVAS,
        "uint8_max_diff": uint8_max,
        "uint8_pixels_differing": uint8_differ,
        "matrix": matrix_check(scales),
    }


# --- epochs -------------------------------------------------------------------------------


def one_epoch(loader: Any) -> dict[str, float]:
    """One full epoch: start-up (iter() to the first batch) and the rest, wall and CPU."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    batches = iter(loader)
    first, _ = next(batches)
    t1 = time.perf_counter()
    rest = 0
    for x, _ in batches:
        rest += len(x)
    t2 = time.perf_counter()
    del batches  # workers shut down and reaped: their CPU time is counted below
    cpu_s = cpu_seconds() - c0
    return {
        "images": len(first) + rest,
        "after_first": rest,
        "startup_s": t1 - t0,
        "steady_s": t2 - t1,
        "epoch_s": t2 - t0,
        "cpu_s": cpu_s,
    }


def time_loaders(
    datasets: dict[str, Any], workers: list[int], args: argparse.Namespace
) -> list[dict]:
    """``--repeats`` epochs of every (loader, workers), interleaved round by round."""
    from torch.utils.data import DataLoader

    configs = [(name, w) for w in workers for name in datasets]
    loaders = {
        (name, w): DataLoader(
            datasets[name],
            batch_size=args.batch_size,
            num_workers=w,
            multiprocessing_context=args.start_method if w > 0 else None,
        )
        for name, w in configs
    }
    runs: dict[tuple[str, int], list[dict]] = {c: [] for c in configs}
    for rep in range(args.repeats):
        for c in configs:
            runs[c].append(one_epoch(loaders[c]))
            r = runs[c][-1]
            print(
                f"  repeat {rep + 1}: {c[0]:6s} workers={c[1]}: "
                f"{r['after_first'] / r['steady_s']:10,.0f} img/s "
                f"(epoch {r['epoch_s']:.2f} s)",
                flush=True,
            )
    out = []
    for (name, w), rs in runs.items():
        rates = [r["after_first"] / r["steady_s"] for r in rs]
        out.append(
            {
                "loader": name,
                "workers": w,
                "images": rs[0]["images"],
                "repeats": rs,
                "images_per_s_median": statistics.median(rates),
                "images_per_s_best": max(rates),
                "epoch_images_per_s_median": statistics.median(
                    r["images"] / r["epoch_s"] for r in rs
                ),
                "startup_s_median": statistics.median(r["startup_s"] for r in rs),
                "epoch_s_median": statistics.median(r["epoch_s"] for r in rs),
                "cpu_s_median": statistics.median(r["cpu_s"] for r in rs),
            }
        )
    return out


def render_alone(digits: np.ndarray, scales: np.ndarray, batch_size: int, repeats: int) -> float:
    """Median seconds of our numpy render of the epoch's batches (pre-gathered uint8 digits),
    no Dataset, no float conversion, no Normalize, no loader: the arithmetic floor of ours."""
    from scale_datasets.ops.canvas import scale_on_canvas

    batches = [
        (digits[i : i + batch_size], scales[i : i + batch_size])
        for i in range(0, len(digits), batch_size)
    ]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for d, s in batches:
            scale_on_canvas(d, s, canvas=CANVAS)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# --- the evaluation grid ------------------------------------------------------------------


def time_grid(path: Path, n_items: int, batch_size: int) -> dict[str, Any]:
    """One pass in batches over the grid's first ``n_items`` items (all at the smallest scale)
    and over ``n_items`` items spread evenly over every scale (each scale's first images)."""
    from torch.utils.data import DataLoader

    from scale_datasets import ScaleDataset

    grid = ScaleDataset(path, "test", scales=GRID)
    n = len(grid.labels)
    per_scale = -(-n_items // len(GRID))
    first = np.arange(min(n_items, len(grid)))
    spread = np.concatenate([k * n + np.arange(min(per_scale, n)) for k in range(len(GRID))])
    out: dict[str, Any] = {"test_images": n, "grid_items": len(grid), "scales": len(GRID)}
    for name, items in (("first", first), ("spread", spread)):
        batches = [items[i : i + batch_size].tolist() for i in range(0, len(items), batch_size)]
        loader = DataLoader(grid, batch_sampler=batches, num_workers=0)
        with timed() as t:
            count = sum(len(x) for x, _ in loader)
        rate = count / t.wall_s
        scales = grid._grid[np.unique(items // n)]
        out[name] = {
            "items": count,
            "wall_s": t.wall_s,
            "cpu_s": t.cpu_s,
            "images_per_s": rate,
            "scale_range": [float(scales.min()), float(scales.max())],
            "paper_grid_s_extrapolated": PAPER_GRID_ITEMS / rate,
        }
        print(f"  grid {name} {count:,} items: {rate:,.0f} img/s", flush=True)
    return out


# --- peak memory, one loader per fresh process --------------------------------------------


def memory_of(
    kind: str,
    path: str,
    root: str,
    padded: bool,
    stats: tuple[float, float],
    batch: int,
    threads: int,
) -> dict:
    """In a fresh process: MiB at the peak of opening the dataset, and what one epoch through
    DataLoader(num_workers=0) adds at its peak."""
    import torch
    from _memory import peak_mib
    from torch.utils.data import DataLoader

    torch.set_num_threads(threads)
    held: dict[str, Any] = {}

    def warm() -> None:  # imports and the DataLoader machinery
        import torchvision.transforms.functional  # noqa: F401

        import scale_datasets  # noqa: F401

        list(DataLoader(list(range(4)), batch_size=2))

    def open_it() -> None:
        if kind == "ours":
            held["ds"] = ours_dataset(Path(path))
        else:  # their dataset holds the PNG paths, labels and scales
            held["ds"] = theirs_dataset(Path(path), Path(root), *stats, padded)

    def epoch() -> None:
        for _ in DataLoader(held["ds"], batch_size=batch, num_workers=0):
            pass

    return {
        "open_mib": peak_mib(open_it, warm, "cpu"),
        "epoch_mib": peak_mib(epoch, lambda: None, "cpu"),
    }


# --- builds -------------------------------------------------------------------------------


def timed_build(out: Path, realisations: int, args: argparse.Namespace) -> tuple[Path, dict]:
    workers = args.build_workers or default_workers()
    with timed() as t:
        path = build(
            "dynamic-mnist",
            out,
            source=args.source,
            download=False,
            distribution=args.distribution,
            realisations=realisations,
            overwrite=True,
            workers=workers,
            **args.sizes,
        )
    row = {
        "realisations": realisations,
        "workers": workers,
        "wall_s": t.wall_s,
        "cpu_s": t.cpu_s,  # this process and its reaped workers
        "file_mb": path.stat().st_size / 1e6,
        "content_sha256": read_info(path).content_sha256,
    }
    print(
        f"  built {realisations} realisation(s) with {workers} worker(s): "
        f"{row['wall_s']:.2f} s, {row['file_mb']:.1f} MB",
        flush=True,
    )
    return path, row


# --- main ---------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="fashion-mnist", help="MNIST-like source (no download)")
    parser.add_argument("--distribution", default="loguniform(1, 8)", help="the scale law")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[0, 2], help="DataLoader num_workers to try"
    )
    parser.add_argument(
        "--start-method",
        choices=["fork", "spawn", "forkserver"],
        help="DataLoader workers' start method (default: the platform's, fork on Linux)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="epochs per loader (interleaved)")
    parser.add_argument("--check-batches", type=int, default=3, help="first batches checked equal")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: DataLoader workers use one each; on a shared 2-core "
        "machine two OpenMP threads made epochs swing by up to 30x; 0 keeps torch's default)",
    )
    parser.add_argument("--grid-items", type=int, default=20_000, help="grid items timed")
    parser.add_argument(
        "--padded-pngs",
        action="store_true",
        help="write the PNGs already padded to 168 x 168 (as Basting's prepare_datasets.py "
        "does with center_crop) instead of 28 x 28 padded in __getitem__",
    )
    parser.add_argument("--build-workers", type=int, help="build workers (default: all cores)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--no-3", action="store_true", help="skip the 3-realisation build")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1,000 / 200 / 2,000 splits, 1 repeat, 2,000 grid items",
    )
    add_output_options(parser)
    args = parser.parse_args()
    if args.quick:
        args.repeats = 1
        args.grid_items = min(args.grid_items, 2_000)
        args.sizes = {"n_train": 1_000, "n_val": 200, "n_test": 2_000}
    else:
        args.sizes = {}
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import torch
    from _memory import in_fresh_process

    threads = torch_threads(args.threads)
    loadavg_before = os.getloadavg()
    path, one = timed_build(work / "dynamic-mnist-r1.h5", 1, args)
    builds = [one]
    if not args.no_3:
        three_path, three = timed_build(work / "dynamic-mnist-r3.h5", 3, args)
        builds.append(three)
        three_path.unlink()

    ours = ours_dataset(path)
    cols = split_columns(path, "train")
    root = work / "pngs" / "train"
    t0 = time.perf_counter()
    paths = write_pngs(cols["digits"], cols["labels"], root, args.padded_pngs)
    png_s = time.perf_counter() - t0
    png_mb = sum(Path(p).stat().st_size for p in paths) / 1e6
    print(f"wrote {len(paths):,} PNGs ({png_mb:.1f} MB) in {png_s:.1f} s", flush=True)
    theirs = theirs_dataset(path, root, ours.mean, ours.std, args.padded_pngs)

    bs = args.batch_size
    n = len(ours)
    batches = [list(range(i * bs, min((i + 1) * bs, n))) for i in range(args.check_batches)]
    batches = [b for b in batches if b]
    largest = np.argsort(ours.scales, kind="stable")[::-1][:bs]
    batches.append(sorted(largest.tolist()))
    checks = check_outputs(ours, theirs, batches)
    print(
        f"outputs checked: max |diff| {checks['max_abs_diff']:.2e} "
        f"({checks['max_diff_grey_levels']:.3f} grey levels), uint8 renders max diff "
        f"{checks['uint8_max_diff']}",
        flush=True,
    )

    loaders = time_loaders(
        {"ours": ours, "theirs": theirs, "ready": ReadyTensors(n)}, args.workers, args
    )
    render_s = render_alone(cols["digits"], cols["scales"], bs, args.repeats)
    grid = time_grid(path, args.grid_items, bs)
    memory = None
    if not args.no_memory:
        stats = (ours.mean, ours.std)
        memory = {
            kind: in_fresh_process(
                memory_of, kind, str(path), str(root), args.padded_pngs, stats, bs, threads
            )
            for kind in ("ours", "theirs")
        }
    return {
        "cores": default_workers(),
        "torch_threads": threads,
        "torch_version": torch.__version__,
        "start_method": args.start_method or mp.get_start_method(),
        "batch_size": bs,
        "repeats": args.repeats,
        "quick": args.quick,
        "distribution": args.distribution,
        "padded_pngs": args.padded_pngs,
        "train_images": n,
        "mean": ours.mean,
        "std": ours.std,
        "png_write_s": png_s,
        "png_mb": png_mb,
        "builds": builds,
        "checks": checks,
        "loaders": loaders,
        "render_alone_s": render_s,
        "grid": grid,
        "memory_mib": memory,
        "target_ratio": TARGET_RATIO,
        "loadavg_before": loadavg_before,
        "loadavg_after": os.getloadavg(),
    }


LABELS = {"ours": "ours", "theirs": "theirs", "ready": "ready*"}


def report(r: dict[str, Any]) -> None:
    k = r["checks"]
    m = k["matrix"]
    png = "168 x 168 (padded)" if r["padded_pngs"] else "28 x 28"
    lines = [
        "",
        f"dynamic-mnist {r['distribution']}, train split {r['train_images']:,} images, canvas "
        f"{CANVAS}; DataLoader(batch_size={r['batch_size']}), workers started with "
        f"{r['start_method']}; {r['cores']} core(s), torch {r['torch_version']} with "
        f"{r['torch_threads']} thread(s)",
        "ours:   ScaleDataset(path, 'train', transform=Normalize((ds.mean,), (ds.std,))), "
        "batch rendered in __getitems__",
        f"theirs: Basting's __getitem__: {png} PNG open + decode, F.pad 70, F.affine BICUBIC, "
        f"ToTensor, Normalize ({r['png_mb']:.1f} MB of PNGs, written in {r['png_write_s']:.1f} s)",
        f"img/s EXCLUDE start-up (the clock starts at the first batch): median (best) of "
        f"{r['repeats']} epoch(s), loaders interleaved; epoch img/s include start-up; cpu s: "
        "this process + its workers per epoch",
        "",
        f"{'loader':8s}{'workers':>8s}{'img/s':>10s}{'(best)':>10s}{'start-up s':>12s}"
        f"{'epoch s':>9s}{'epoch img/s':>13s}{'cpu s':>8s}{'ours/theirs':>13s}",
    ]
    ref = {x["workers"]: x for x in r["loaders"] if x["loader"] == "theirs"}
    ratios: list[tuple[float, float, int]] = []
    order = {"ours": 0, "theirs": 1, "ready": 2}
    for x in sorted(r["loaders"], key=lambda x: (x["workers"], order[x["loader"]])):
        if x["loader"] == "ours" and x["workers"] in ref:
            t = ref[x["workers"]]
            steady = x["images_per_s_median"] / t["images_per_s_median"]
            whole = x["epoch_images_per_s_median"] / t["epoch_images_per_s_median"]
            ratios.append((steady, whole, x["workers"]))
            ratio = f"{steady:.1f}x"
        else:
            ratio = "1.0x" if x["loader"] == "theirs" else "-"
        lines.append(
            f"{LABELS[x['loader']]:8s}{x['workers']:8d}{x['images_per_s_median']:10,.0f}"
            f"{x['images_per_s_best']:10,.0f}{x['startup_s_median']:12.3f}"
            f"{x['epoch_s_median']:9.2f}{x['epoch_images_per_s_median']:13,.0f}"
            f"{x['cpu_s_median']:8.2f}{ratio:>13s}"
        )
    alone = r["train_images"] / r["render_alone_s"]
    lines += [
        "ready* = no render: ready-made zero (1, 168, 168) float32 samples through the same "
        "DataLoader (clone + collate, and with workers the shared-memory hand-over): the "
        "loader's own ceiling",
        f"our render alone (numpy scale_on_canvas on the epoch's pre-gathered batches, no "
        f"Dataset, float, Normalize or loader): {alone:,.0f} img/s = "
        f"{alone / ref[0]['images_per_s_median'] if 0 in ref else float('nan'):.1f}x theirs "
        "with 0 workers",
        "",
        f"outputs equal: {yes_no(k['labels_identical'] and k['within_one_grey_level'])} (every "
        f"item of {k['batches']} batches, {k['items']} items, scales "
        f"{k['scale_range'][0]:.3f}..{k['scale_range'][1]:.3f}: labels identical "
        f"{yes_no(k['labels_identical'])}; normalised pixels within 1/255/std = "
        f"{k['tolerance']:.4f}: {yes_no(k['within_one_grey_level'])}, max |diff| "
        f"{k['max_abs_diff']:.2e} = {k['max_diff_grey_levels']:.4f} grey levels, "
        f"{k['pixels_differing']:,} of {k['pixels']:,} pixels differ at all; uint8 renders "
        f"(torchvision/Pillow against ours): max diff {k['uint8_max_diff']}, "
        f"{k['uint8_pixels_differing']:,} pixels differ)",
        f"torchvision {m['torchvision']} PIL centre {m['centre']}: its inverse affine matrix "
        f"equals our affine_coefficients bit for bit: {yes_no(m['identical'])}",
        f"train statistics: mean {r['mean']:.6f}, std {r['std']:.6f}",
    ]
    if r["memory_mib"]:
        mem = r["memory_mib"]
        lines.append(
            f"peak RSS MiB, fresh process, 0 workers (open = reading the file / listing the "
            f"PNGs; epoch = what one epoch adds): ours {mem['ours']['open_mib']:.0f} + "
            f"{mem['ours']['epoch_mib']:.0f}, theirs {mem['theirs']['open_mib']:.0f} + "
            f"{mem['theirs']['epoch_mib']:.0f}"
        )
    g = r["grid"]
    lines += [
        "",
        f"evaluation grid ScaleDataset(path, 'test', scales=logspace(-1, 3.5, 45, base=2)): "
        f"{g['test_images']:,} test images x {g['scales']} scales = {g['grid_items']:,} items; "
        "batches of 128, num_workers=0, no transform",
    ]
    for name, label in (("first", "first items"), ("spread", "spread over all scales")):
        x = g[name]
        lines.append(
            f"  {label:24s}{x['items']:8,d} items, scales {x['scale_range'][0]:.2f}.."
            f"{x['scale_range'][1]:.2f}: {x['images_per_s']:10,.0f} img/s ({x['cpu_s']:.1f} cpu s)"
            f" -> the paper's {PAPER_GRID_ITEMS / 1e6:.2f}M-item grid EXTRAPOLATED: "
            f"{x['paper_grid_s_extrapolated']:,.0f} s"
        )
    lines.append(
        "  (the grid is scale-major: its first items are all at scale 0.5, the cheapest; the "
        "spread pass is the one to extrapolate from)"
    )
    lines += ["", "builds (dynamic-mnist, everything included):"]
    for b in r["builds"]:
        lines.append(
            f"  {b['realisations']} realisation(s), {b['workers']} worker(s): {b['wall_s']:.2f} s "
            f"wall, {b['cpu_s']:.2f} cpu s, {b['file_mb']:.1f} MB"
        )
    if ratios:
        low = min(ratios)
        lines += [
            "",
            f"target: ours >= {TARGET_RATIO:g}x theirs with each worker count",
        ]
        for steady, whole, w in ratios:
            lines.append(
                f"  workers={w}: {steady:.1f}x ({whole:.1f}x on whole epochs, start-up "
                f"included): {'met' if steady >= TARGET_RATIO else 'NOT met'}"
            )
        lines.append(f"  worst: {low[0]:.1f}x: {'met' if low[0] >= TARGET_RATIO else 'NOT met'}")
    la, lb = r["loadavg_before"], r["loadavg_after"]
    lines.append(f"load average before {la[0]:.2f}, after {lb[0]:.2f}")
    if r["quick"]:
        lines.append("--quick: small splits, one repeat; figures not representative")
    print("\n".join(lines))


def main() -> None:
    run_and_report(parse_args(), "bench-dynamic-", run, report)


if __name__ == "__main__":
    main()
