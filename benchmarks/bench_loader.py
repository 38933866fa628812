"""Benchmark: one epoch of ``MNISTScale`` through a DataLoader against torchvision's ImageFolder.

One realisation is built from the source (or ``--file`` reuses a built file). For each split
(default: the 50,000-image test split and the 10,000-image train split) ours is
``MNISTScale(path, split)`` in memory with 0 and 2 DataLoader workers, and lazy
(``in_memory=False``) with 2 workers. The reference, in the same process, is the same images
written as PNGs in an ImageFolder layout (``root/{label}/{idx}.png``) and read by
``ImageFolder(root, transform=Compose([Grayscale(1), ToTensor()]))`` with the same DataLoader
settings (batch 128, no shuffling unless ``--shuffle``).

Images/s EXCLUDE start-up: the clock starts when the first batch has arrived, so DataLoader
worker start-up (fork) and the first batch are reported separately as "start-up s". PNGs are
read from a warm page cache (they were just written). Nothing is asserted.

    python benchmarks/bench_loader.py              # full: 50k test + 10k train
    python benchmarks/bench_loader.py --quick      # smoke test on a small build
    python benchmarks/bench_loader.py --file mnist-scale.h5 --json out.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _outputs import add_output_options, run_and_report, write_image_folder, yes_no

from scale_datasets.build import build
from scale_datasets.storage.format import realisation_group

# torch, torchvision and MNISTScale (which imports torch) are imported inside the functions that
# use them: build() starts its workers with "spawn", which re-imports this script in each worker,
# and a module-level torch import would add seconds of start-up to every worker.
if TYPE_CHECKING:
    from torch.utils.data import Dataset
    from torchvision.datasets import ImageFolder

    from scale_datasets.datasets import MNISTScale

TARGET_RATIO = 20.0


@dataclass
class EpochResult:
    """Means over ``epochs`` full epochs (more than one only when an epoch is short)."""

    loader: str
    workers: int
    images: int  # per epoch
    epochs: int
    startup_s: float  # iter() to the first batch: worker start-up plus one batch
    steady_s: float  # first batch to the end of the epoch
    epoch_s: float  # the whole epoch, start-up included
    images_per_s: float  # images after the first batch / steady_s, over all epochs


def time_epochs(
    name: str, dataset: Dataset, workers: int, batch_size: int, shuffle: bool, min_seconds: float
) -> EpochResult:
    """Full epochs until ``min_seconds`` of steady time have passed (at least one).

    Each epoch starts a fresh iterator (so fresh workers, as without persistent_workers); the
    rate counts the images after each first batch over the time after it.
    """
    import torch
    from torch.utils.data import DataLoader

    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        shuffle=shuffle,
        generator=torch.Generator().manual_seed(0),
    )
    epochs, images, startup, steady, counted = 0, 0, 0.0, 0.0, 0
    while epochs == 0 or steady < min_seconds:
        t0 = time.perf_counter()
        batches = iter(loader)
        first_images, _ = next(batches)
        t1 = time.perf_counter()
        first, rest = len(first_images), 0
        for batch, _ in batches:
            rest += len(batch)
        t2 = time.perf_counter()
        del batches
        epochs += 1
        images = first + rest
        startup += t1 - t0
        steady += t2 - t1
        counted += rest
    return EpochResult(
        loader=name,
        workers=workers,
        images=images,
        epochs=epochs,
        startup_s=startup / epochs,
        steady_s=steady / epochs,
        epoch_s=(startup + steady) / epochs,
        images_per_s=counted / steady if steady > 0 else float("nan"),
    )


def first_batch_check(ours: MNISTScale, ref: ImageFolder, batch_size: int) -> bool:
    """The first unshuffled batch of each path equals the other's samples of the same indices.

    ImageFolder orders files by class then name, so its sample order is mapped back to our
    index order through the ``{idx}.png`` file names.
    """
    import torch
    from torch.utils.data import DataLoader

    index_of = [int(Path(p).stem) for p, _ in ref.samples]
    position_of = {idx: pos for pos, idx in enumerate(index_of)}
    ours_images, ours_labels = next(iter(DataLoader(ours, batch_size=batch_size)))
    ref_images, ref_labels = next(iter(DataLoader(ref, batch_size=batch_size)))
    n = len(ours_images)
    # Our first batch (indices 0..n-1) against ImageFolder's samples of those indices ...
    ref_same = [ref[position_of[i]] for i in range(n)]
    ok = torch.equal(ours_images, torch.stack([img for img, _ in ref_same]))
    ok &= ours_labels.tolist() == [int(ref.classes[c]) for _, c in ref_same]
    # ... and ImageFolder's first batch against our samples of its indices.
    ours_same = [ours[index_of[pos]] for pos in range(len(ref_images))]
    ok &= torch.equal(ref_images, torch.stack([img for img, _ in ours_same]))
    ok &= [int(ref.classes[c]) for c in ref_labels.tolist()] == [lab for _, lab in ours_same]
    return bool(ok)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, help="reuse this built file instead of building")
    parser.add_argument("--source", default="fashion-mnist", help="MNIST-like source (no download)")
    parser.add_argument("--realisation", type=int, default=0, help="realisation to read")
    parser.add_argument("--splits", nargs="+", default=["test", "train"], help="splits to read")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[0, 2], help="DataLoader num_workers to try"
    )
    parser.add_argument(
        "--lazy-workers", type=int, nargs="*", default=[2], help="num_workers for lazy mode"
    )
    parser.add_argument("--shuffle", action="store_true", help="shuffle=True (seeded)")
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=2.0,
        help="repeat full epochs until this much steady time (short epochs are noisy)",
    )
    parser.add_argument("--n-train", type=int, help="build option: train split size")
    parser.add_argument("--n-val", type=int, help="build option: val split size")
    parser.add_argument("--n-test", type=int, help="build option: test split size")
    parser.add_argument(
        "--quick", action="store_true", help="build 2,000 train / 400 val / 5,000 test"
    )
    add_output_options(parser)
    args = parser.parse_args()
    if args.quick:
        args.n_train = args.n_train or 2_000
        args.n_val = args.n_val or 400
        args.n_test = args.n_test or 5_000
        args.min_seconds = min(args.min_seconds, 0.5)
    return args


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import torch
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import Compose, Grayscale, ToTensor

    from scale_datasets.datasets import MNISTScale

    path = args.file
    build_s = None
    if path is None:
        options = {
            k: v
            for k, v in (("n_train", args.n_train), ("n_val", args.n_val), ("n_test", args.n_test))
            if v is not None
        }
        t0 = time.perf_counter()
        path = build(
            "mnist-scale",
            work / f"mnist-scale-{args.source}-r{args.realisation}.h5",
            source=args.source,
            download=False,
            realisation_ids=(args.realisation,),
            overwrite=True,
            **options,
        )
        build_s = time.perf_counter() - t0
        print(f"built {path} in {build_s:.1f} s", flush=True)

    result: dict[str, Any] = {
        "file": str(path),
        "build_s": build_s,
        "realisation": args.realisation,
        "batch_size": args.batch_size,
        "shuffle": args.shuffle,
        "min_seconds": args.min_seconds,
        "torch_threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "splits": {},
    }
    for split in args.splits:
        ours = MNISTScale(path, split=split, realisation=args.realisation)
        lazy = MNISTScale(path, split=split, realisation=args.realisation, in_memory=False)
        root = work / "imagefolder" / split
        if root.exists():
            shutil.rmtree(root)
        t0 = time.perf_counter()
        _, png_bytes = write_image_folder(
            path, f"{realisation_group(args.realisation)}/{split}", root
        )
        png_write_s = time.perf_counter() - t0
        ref = ImageFolder(str(root), transform=Compose([Grayscale(1), ToTensor()]))
        print(f"split {split}: wrote {len(ref):,} PNGs in {png_write_s:.1f} s", flush=True)
        same = first_batch_check(ours, ref, args.batch_size)

        configs = [("MNISTScale in-memory", ours, w) for w in args.workers]
        configs += [("MNISTScale lazy", lazy, w) for w in args.lazy_workers]
        configs += [("ImageFolder PNG", ref, w) for w in args.workers]
        runs = [
            time_epochs(name, ds, w, args.batch_size, args.shuffle, args.min_seconds)
            for name, ds, w in configs
        ]
        for r in runs:
            print(f"  {r.loader:22s} workers={r.workers}: {r.images_per_s:10.0f} img/s", flush=True)
        ref_rate = {r.workers: r.images_per_s for r in runs if r.loader == "ImageFolder PNG"}
        ratios = {
            f"{r.loader} w{r.workers}": r.images_per_s / ref_rate[r.workers]
            for r in runs
            if r.loader != "ImageFolder PNG" and r.workers in ref_rate
        }
        best_ours = max(r.images_per_s for r in runs if r.loader != "ImageFolder PNG")
        best_ref = max(ref_rate.values())
        result["splits"][split] = {
            "images": len(ours),
            "png_write_s": png_write_s,
            "png_mb": png_bytes / 1e6,
            "first_batch_identical": same,
            "runs": [asdict(r) for r in runs],
            "ratios_vs_imagefolder_same_workers": ratios,
            "ratio_best_vs_best": best_ours / best_ref,
        }
    return result


def report(r: dict[str, Any]) -> None:
    lines = [
        "",
        f"DataLoader(batch_size={r['batch_size']}, shuffle={r['shuffle']}); img/s EXCLUDE "
        "start-up (the clock starts at the first batch);",
        "start-up s = iter() to first batch (worker start-up + one batch), reported separately;",
        f"full epochs are repeated until {r['min_seconds']:g} s of steady time (column epochs), "
        "figures are means per epoch.",
    ]
    all_ratios: list[tuple[float, str]] = []
    for split, s in r["splits"].items():
        ref_rate = {
            x["workers"]: x["images_per_s"] for x in s["runs"] if "ImageFolder" in x["loader"]
        }
        lines += [
            "",
            f"split {split}: {s['images']:,} images "
            f"(ImageFolder: {s['png_mb']:.1f} MB of PNGs, written in {s['png_write_s']:.1f} s)",
            f"{'loader':24s}{'workers':>8s}{'epochs':>7s}{'start-up s':>12s}{'epoch s':>10s}"
            f"{'img/s':>11s}{'vs ImageFolder':>16s}",
        ]
        for x in s["runs"]:
            if "ImageFolder" in x["loader"]:
                ratio = "1.0x"
            elif x["workers"] in ref_rate:
                value = x["images_per_s"] / ref_rate[x["workers"]]
                all_ratios.append((value, f"{x['loader']}, workers={x['workers']}, {split}"))
                ratio = f"{value:.1f}x"
            else:
                ratio = "-"
            lines.append(
                f"{x['loader']:24s}{x['workers']:8d}{x['epochs']:7d}{x['startup_s']:12.3f}"
                f"{x['epoch_s']:10.2f}"
                f"{x['images_per_s']:11.0f}{ratio:>16s}"
            )
        lines.append(f"best ours / best ImageFolder: {s['ratio_best_vs_best']:.1f}x")
        lines.append(
            "first batch identical (pixels and labels, both directions): "
            f"{yes_no(s['first_batch_identical'])}"
        )
    if all_ratios:
        low, where = min(all_ratios)
        best = min(s["ratio_best_vs_best"] for s in r["splits"].values())
        lines += [
            "",
            f"target: >= {TARGET_RATIO:g}x ImageFolder",
            f"  same workers, worst row: {low:.1f}x ({where}): "
            f"{'met' if low >= TARGET_RATIO else 'NOT met'}",
            f"  best setting vs best setting, worst split: {best:.1f}x: "
            f"{'met' if best >= TARGET_RATIO else 'NOT met'}",
        ]
    print("\n".join(lines))


def main() -> None:
    run_and_report(parse_args(), "bench-loader-", run, report)


if __name__ == "__main__":
    main()
