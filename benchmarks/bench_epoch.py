"""Benchmark: one training epoch of cnn_mnist with our runner against SESN's ImageFolder pipeline.

One realisation of ``mnist-scale`` is built from Debian's Fashion-MNIST (or ``--file`` reuses a
built file), then one epoch of its train split (10,000 images; ``--quick``: 1,000) trains
``cnn_mnist`` (Adam, lr 0.01, cross-entropy, batch 128, shuffled) two ways, from the same
initial weights:

* ours: the leaderboard runner's epoch, ``open_split(path, "train", 0, get_recipe("mnist-scale"),
  device, seed=0)`` (the whole split held on the device, each batch an index into it, normalised
  with the file's ``ds.mean`` / ``ds.std``) and ``train_epoch(model, optimiser, train, epoch)``;
* SESN's pipeline, written out here from its description: the same train split written once as
  PNG files ``root/{label}/{i}.png`` (28 x 28 grey, the stored uint8 pixels), read by
  ``torchvision.datasets.ImageFolder(root, transform=Compose([Grayscale(), ToTensor(),
  Normalize((0.0607,), (0.2161,))]))`` through ``DataLoader(batch_size=128, shuffle=True,
  num_workers=4, pin_memory=<device is cuda>)``, each batch moved to the device, then
  zero_grad / forward / cross-entropy / backward / step.

Before anything is timed, every item of our first batch (epoch 0's shuffled indices) is compared
with what ImageFolder returns for the PNG of the same index (ImageFolder's order is mapped back
through the ``{i}.png`` names): normalised pixels within 1e-6 and identical labels; ImageFolder's
classes must map folder ``k`` to label ``k``. If the file records statistics other than the
protocol constants, both pipelines use the file's and the output says so.

Each pipeline runs one warm-up epoch (not counted), then ``--repeats`` epochs interleaved (ours,
SESN, ours, SESN, ...). An epoch is timed whole, as training sees it: for SESN that includes
starting its workers (a fresh DataLoader iterator per epoch, as SESN's loop has), whose share is
reported as "start-up" (``iter()`` to the first batch); CUDA is synchronised before every clock
read. images/s = images trained / epoch seconds, median and best. CPU seconds per epoch count this
process and its reaped DataLoader workers, so a noisy run shows. One-off costs (build, PNG write,
ImageFolder scan, ``open_split``) are reported apart. Nothing is asserted on time.

torch runs on one thread unless ``--threads`` says otherwise (as the other benchmarks: on a shared
2-core machine two OpenMP threads made epochs swing by up to 30x); DataLoader workers run one each.

    python benchmarks/bench_epoch.py                 # full: 10k train images, 3 repeats
    python benchmarks/bench_epoch.py --quick         # smoke test: 1k train images, 1 repeat
    python benchmarks/bench_epoch.py --device cuda --json out.json --keep /tmp/bench-epoch
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from _outputs import (
    add_output_options,
    load_average,
    run_and_report,
    write_image_folder,
    yes_no,
)
from _timing import Timing, cpu_seconds, rate_summary, sync, torch_threads

from scale_datasets.build import build
from scale_datasets.storage.format import realisation_group

# torch, torchvision and scale_eq (which imports torch) are imported inside the functions that
# use them: build() starts its workers with "spawn", which re-imports this script in each worker,
# and a module-level torch import would add seconds of start-up to every worker.
if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder

    from scale_eq.leaderboard.data import SplitData

TARGET_RATIO = 3.0  # ours / SESN, epoch rate, on a GPU
MODEL = "cnn_mnist"
LR = 0.01
BATCH = 128
SESN_MEAN, SESN_STD = 0.0607, 0.2161  # the protocol constants SESN normalises with
ATOL = 1e-6
SEED = 0


def sesn_dataset(root: Path, mean: float, std: float) -> ImageFolder:
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import Compose, Grayscale, Normalize, ToTensor

    transform = Compose([Grayscale(), ToTensor(), Normalize((mean,), (std,))])
    return ImageFolder(str(root), transform=transform)


def sesn_loader(dataset: ImageFolder, workers: int, device: str) -> DataLoader:
    import torch
    from torch.utils.data import DataLoader

    # torch warns when num_workers exceeds the cores; the report says so once instead.
    warnings.filterwarnings("ignore", message="This DataLoader will create", category=UserWarning)
    return DataLoader(
        dataset,
        batch_size=BATCH,
        shuffle=True,
        num_workers=workers,
        pin_memory=device == "cuda",
        generator=torch.Generator().manual_seed(SEED),
    )


def timed_epoch(
    device: str, epoch: Callable[[float], tuple[float, int, float | None]]
) -> dict[str, Any]:
    """``epoch(t0)`` trains one epoch and returns (loss summed over its images, images,
    start-up seconds or None); timed whole, CUDA synchronised before each clock read: wall,
    start-up and CPU seconds, images and the mean loss."""
    sync(device)
    t0, c0 = time.perf_counter(), cpu_seconds()
    loss_sum, seen, startup = epoch(t0)
    sync(device)
    return {
        "wall_s": time.perf_counter() - t0,
        "startup_s": startup,
        "cpu_s": cpu_seconds() - c0,
        "images": seen,
        "loss": loss_sum / max(seen, 1),
    }


def sesn_epoch(
    model: nn.Module, optimiser: torch.optim.Optimizer, loader: DataLoader, device: str
) -> dict[str, Any]:
    """SESN's training loop over one epoch; start-up is iter() to the first batch."""
    import torch.nn.functional as F

    def epoch(t0: float) -> tuple[float, int, float | None]:
        startup = None
        seen = 0
        losses = []
        for x, y in loader:
            if startup is None:
                startup = time.perf_counter() - t0
            x, y = x.to(device), y.to(device)
            optimiser.zero_grad()
            out = model(x)
            loss = F.cross_entropy(out.logits if hasattr(out, "logits") else out, y)
            loss.backward()
            optimiser.step()
            losses.append(loss.detach() * len(y))  # no device sync per batch
            seen += len(y)
        return float(sum(losses)), seen, startup

    model.train()
    return timed_epoch(device, epoch)


def ours_epoch(
    model: nn.Module, optimiser: torch.optim.Optimizer, train: SplitData, epoch: int, device: str
) -> dict[str, Any]:
    from scale_eq.leaderboard.runner import train_epoch

    return timed_epoch(device, lambda _: (*train_epoch(model, optimiser, train, epoch=epoch), None))


def check_first_batch(train: SplitData, ref: ImageFolder) -> dict[str, Any]:
    """Every item of our epoch-0 first batch against ImageFolder's item of the same PNG index."""
    import torch

    position_of = {int(Path(p).stem): pos for pos, (p, _) in enumerate(ref.samples)}
    idx = train.batch_indices(0)[0]
    ours = train.load(idx)
    items = [ref[position_of[int(i)]] for i in idx]
    theirs = torch.stack([x for x, _ in items]).to(ours.x.device)
    labels = [int(ref.classes[c]) for _, c in items]
    diff = float((ours.x - theirs).abs().max())
    return {
        "items": len(idx),
        "max_abs_diff": diff,
        "pixels_equal": bool(ours.x.shape == theirs.shape and diff <= ATOL),
        "labels_identical": ours.y.tolist() == labels,
        "class_to_idx_ok": all(int(name) == k for name, k in ref.class_to_idx.items()),
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    startups = [r["startup_s"] for r in runs if r["startup_s"] is not None]
    return {
        **rate_summary(runs[0]["images"], [Timing(r["wall_s"], r["cpu_s"]) for r in runs]),
        "runs": runs,
        "median_startup_s": statistics.median(startups) if startups else None,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], help="default: cuda if available, else cpu"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per pipeline")
    parser.add_argument("--workers", type=int, default=4, help="SESN's DataLoader num_workers")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: with 2 OpenMP threads on a shared 2-core machine the "
        "epochs swung by up to 30x between repeats; 0 keeps torch's default)",
    )
    parser.add_argument("--source", default="fashion-mnist", help="MNIST-like source (no download)")
    parser.add_argument("--file", type=Path, help="reuse this built mnist-scale file")
    parser.add_argument(
        "--quick", action="store_true", help="build 1,000 train / 200 val / 1,000 test, 1 repeat"
    )
    add_output_options(parser)
    args = parser.parse_args()
    if args.quick:
        args.repeats = 1
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import copy

    import torch

    from scale_eq.leaderboard.data import open_split
    from scale_eq.leaderboard.recipes import get_recipe
    from scale_eq.leaderboard.runner import build_model

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    threads = torch_threads(args.threads)
    loadavg_before = os.getloadavg()

    # One-off costs.
    path, build_s = args.file, None
    if path is None:
        sizes = {"n_train": 1_000, "n_val": 200, "n_test": 1_000} if args.quick else {}
        t0 = time.perf_counter()
        path = build(
            "mnist-scale",
            work / f"mnist-scale-{args.source}.h5",
            source=args.source,
            download=False,
            realisations=1,
            overwrite=True,
            **sizes,
        )
        build_s = time.perf_counter() - t0
        print(f"built {path.name} in {build_s:.1f} s", flush=True)
    t0 = time.perf_counter()
    train = open_split(path, "train", 0, get_recipe("mnist-scale"), torch.device(device), SEED)
    sync(device)
    open_s = time.perf_counter() - t0
    root = work / "sesn-png-train"
    t0 = time.perf_counter()
    n_png, png_bytes = write_image_folder(path, f"{realisation_group(0)}/train", root)
    png_s = time.perf_counter() - t0
    print(f"wrote {n_png:,} PNGs in {png_s:.1f} s", flush=True)

    file_stats = (float(train.ds.mean), float(train.ds.std))
    protocol = bool(np.allclose(file_stats, (SESN_MEAN, SESN_STD), rtol=0, atol=1e-12))
    mean, std = (SESN_MEAN, SESN_STD) if protocol else file_stats
    t0 = time.perf_counter()
    ref = sesn_dataset(root, mean, std)
    scan_s = time.perf_counter() - t0
    checks = check_first_batch(train, ref)
    checks["normalisation"] = {"mean": mean, "std": std, "protocol_constants": protocol}
    print(
        f"first batch: {checks['items']} items, max |diff| {checks['max_abs_diff']:.1e}, "
        f"labels identical {checks['labels_identical']}",
        flush=True,
    )
    if not (checks["pixels_equal"] and checks["labels_identical"] and checks["class_to_idx_ok"]):
        raise SystemExit(f"the two pipelines do not read the same data: {checks}")

    # The same initial weights for both.
    torch.manual_seed(SEED)
    ours_model = build_model(MODEL, {}).to(device)
    sesn_model = copy.deepcopy(ours_model)
    ours_opt = torch.optim.Adam(ours_model.parameters(), lr=LR)
    sesn_opt = torch.optim.Adam(sesn_model.parameters(), lr=LR)
    loader = sesn_loader(ref, args.workers, device)

    warm = {
        "ours": ours_epoch(ours_model, ours_opt, train, 0, device),
        "sesn": sesn_epoch(sesn_model, sesn_opt, loader, device),
    }
    print(
        f"warm-up epochs: ours {warm['ours']['wall_s']:.1f} s, SESN {warm['sesn']['wall_s']:.1f} s",
        flush=True,
    )
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "sesn": []}
    for rep in range(args.repeats):
        runs["ours"].append(ours_epoch(ours_model, ours_opt, train, rep + 1, device))
        runs["sesn"].append(sesn_epoch(sesn_model, sesn_opt, loader, device))
        print(
            f"  epoch {rep + 1}/{args.repeats}: ours {runs['ours'][-1]['wall_s']:.1f} s, "
            f"SESN {runs['sesn'][-1]['wall_s']:.1f} s",
            flush=True,
        )
    pipelines = {name: summary(r) for name, r in runs.items()}
    ratio = pipelines["ours"]["images_per_s_median"] / pipelines["sesn"]["images_per_s_median"]
    return {
        "device": device,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else None,
        "cores": os.cpu_count(),
        "torch_threads": threads,
        "torch_version": torch.__version__,
        "model": MODEL,
        "batch_size": BATCH,
        "lr": LR,
        "workers": args.workers,
        "repeats": args.repeats,
        "quick": args.quick,
        "train_images": len(train),
        "one_off_s": {
            "build": build_s,
            "ours_open_split": open_s,
            "sesn_png_write": png_s,
            "sesn_imagefolder_scan": scan_s,
        },
        "png_mb": png_bytes / 1e6,
        "checks": checks,
        "warmup": warm,
        "pipelines": pipelines,
        "ratio_median": ratio,
        "target_ratio": TARGET_RATIO,
        "target_met": (ratio >= TARGET_RATIO) if device == "cuda" else None,
        "loadavg_before": loadavg_before,
        "loadavg_after": os.getloadavg(),
    }


LABELS = {
    "ours": "ours: open_split + train_epoch",
    "sesn": "SESN: ImageFolder PNG, {w} workers",
}


def report(r: dict[str, Any]) -> None:
    dev = r["device"] if r["device_name"] is None else f"cuda ({r['device_name']})"
    k = r["checks"]
    norm = k["normalisation"]
    lines = [
        "",
        f"one training epoch of {r['model']} (Adam lr {r['lr']:g}, cross-entropy, batch "
        f"{r['batch_size']}, shuffled) on mnist-scale realisation 0's train split: "
        f"{r['train_images']:,} images",
        f"{r['cores']} core(s), torch {r['torch_version']} with {r['torch_threads']} thread(s); "
        f"one warm-up epoch each, then median (best) of {r['repeats']} epoch(s), interleaved",
        f"first batch checked: {k['items']} items, normalised pixels equal to {ATOL:g}: "
        f"{yes_no(k['pixels_equal'])} (max |diff| {k['max_abs_diff']:.1e}); labels "
        f"identical: {yes_no(k['labels_identical'])}; normalisation "
        f"({norm['mean']:g}, {norm['std']:g})"
        + (
            " (the protocol constants, as the file gives)"
            if norm["protocol_constants"]
            else " (the FILE's statistics, used by both: they differ from SESN's constants)"
        ),
        "",
        f"  {'pipeline':36s}{'device':>8s}{'img/s':>9s}{'(best)':>9s}{'epoch s':>9s}"
        f"{'cpu s':>8s}{'start-up s':>12s}{'x SESN':>8s}",
    ]
    sesn_rate = r["pipelines"]["sesn"]["images_per_s_median"]
    for name, p in r["pipelines"].items():
        startup = "-" if p["median_startup_s"] is None else f"{p['median_startup_s']:.2f}"
        lines.append(
            f"  {LABELS[name].format(w=r['workers']):36s}{r['device']:>8s}"
            f"{p['images_per_s_median']:9,.0f}{p['images_per_s_best']:9,.0f}"
            f"{p['median_s']:9.2f}{p['median_cpu_s']:8.1f}{startup:>12s}"
            f"{p['images_per_s_median'] / sesn_rate:7.2f}x"
        )
    if r["device"] == "cuda":
        verdict = "met" if r["target_met"] else "NOT met"
    else:
        verdict = "not measured on CPU"
    o = r["one_off_s"]
    build = "reused --file" if o["build"] is None else f"{o['build']:.1f} s"
    lines += [
        "",
        f"ratio ours / SESN (median epoch rate): {r['ratio_median']:.2f}x on {dev}",
        f"target (GPU): ours >= {r['target_ratio']:g}x SESN: {verdict}",
        "",
        "notes:",
        "  - epoch s is the whole epoch; SESN's includes starting its workers each epoch (start-up"
        " = iter() to the first batch); cpu s counts this process and its reaped workers",
        f"  - one-off: build {build}; ours open_split {o['ours_open_split']:.2f} s (the split "
        f"read onto the device); SESN PNG write {o['sesn_png_write']:.1f} s ({r['png_mb']:.1f} MB)"
        f", ImageFolder scan {o['sesn_imagefolder_scan']:.2f} s",
        "  - mean train loss per timed epoch: ours "
        + ", ".join(f"{x['loss']:.3f}" for x in r["pipelines"]["ours"]["runs"])
        + "; SESN "
        + ", ".join(f"{x['loss']:.3f}" for x in r["pipelines"]["sesn"]["runs"])
        + " (same initial weights; the batch orders differ)",
        f"  - {load_average(r)} (wall >> cpu s, or repeats that swing, mean a noisy run)",
    ]
    if r["workers"] > r["cores"]:
        lines.append(
            f"  - SESN's {r['workers']} workers plus the training process share {r['cores']} "
            "core(s) here (torch warns of it; the warning is silenced)"
        )
    if r["quick"]:
        lines.append("  - --quick: 1,000 train images, one repeat; figures are not representative")
    print("\n".join(lines))


def main() -> None:
    run_and_report(parse_args(), "bench-epoch-", run, report)


if __name__ == "__main__":
    main()
