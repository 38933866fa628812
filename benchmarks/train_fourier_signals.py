"""Train `fourier_1d` on real 1D signals at many lengths (`signals-1d`), with the leaderboard.

Builds `signals-1d` from an archive problem packaged with the aeon wheel (GunPoint by default:
200 series of 150 values, 2 classes; `pip install --no-deps aeon`), then runs the `signals-1d`
recipe of `scale-datasets bench` (fourier_1d fitted to the file's channels, classes and lengths,
AdamW 0.01, consistency loss, one length per batch) for `--epochs` epochs and prints what its
record holds: test accuracy per length, both consistency rates and the equivariance error of the
final features.

    python benchmarks/train_fourier_signals.py                      # GunPoint, 30 epochs, CPU
    python benchmarks/train_fourier_signals.py --problem ArrowHead --epochs 60 --device cuda
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from scale_datasets.build import build
from scale_eq.leaderboard.recipes import get_recipe
from scale_eq.leaderboard.runner import run_grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="GunPoint", help="archive problem name")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--eq-images", type=int, default=32, help="images of the eq. error")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the record here")
    args = parser.parse_args()
    recipe = dataclasses.replace(
        get_recipe("signals-1d"),
        epochs=args.epochs,
        milestones=(max(1, 2 * args.epochs // 3),),
        eq_images=args.eq_images,
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = build("signals-1d", Path(tmp) / "signals.h5", source=args.problem.lower())
        print(f"built signals-1d from {args.problem} in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        run_grid(recipe, path, Path(tmp) / "runs", device=args.device, seeds=(args.seed,))
        (line,) = (Path(tmp) / "runs" / "records.jsonl").read_text().splitlines()
    record = json.loads(line)
    m = record["metrics"]
    per = m["per_resolution"]
    lengths = [row["resolution"] for row in per]
    print(
        f"{record['model']} ({record['parameters']:,} parameters), {args.epochs} epochs in "
        f"{time.perf_counter() - t0:.0f} s on {args.device} (training and scoring)"
    )
    print(
        f"test error {100 * m['test_error']:.2f}% on {m['test_images']} series at their own "
        f"lengths {lengths[0]}..{lengths[-1]}"
    )
    print("test accuracy per length, in groups of ~10 lengths (count-weighted):")
    for chunk in np.array_split(np.arange(len(per)), max(1, len(per) // 10)):
        rows = [per[i] for i in chunk]
        n = sum(r["n"] for r in rows)
        acc = sum(r["accuracy"] * r["n"] for r in rows) / n
        print(f"  n = {rows[0]['resolution']:3d}..{rows[-1]['resolution']:3d}: {acc:.3f} ({n})")
    c = m["consistency"]
    print(
        f"consistency over all {len(c['resolutions'])} lengths, {c['images']} test series: "
        f"correct at every length {c['correct_at_every_resolution']:.4f}, same class at every "
        f"length {c['same_class_at_every_resolution']:.4f}"
    )
    eq = m["equivariance_error"]
    print(f"equivariance error ({eq['what']}, {eq['images']} series): {eq['value']:.2e}")
    if args.json:
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
