"""Micro-benchmark: batch ``scale_about_centre`` against a per-image Pillow loop.

The workload is one MNIST-Scale realisation: 62,000 28x28 uint8 digits, each shrunk by its own
float32 factor in [0.3, 1]. Both sides are pinned to one CPU core (where the OS allows it), timed
in process CPU time, and their outputs are checked to be identical, so the speed-up is for the
same bits.

    python benchmarks/bench_scaling.py [--n 62000] [--repeats 3] [--pil-n 62000]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from scale_datasets.ops.scaling import pil_scale_about_centre, scale_about_centre


def _best_of(repeats: int, fn) -> tuple[float, object]:
    """Fastest of ``repeats`` runs, in CPU time of this process.

    CPU time rather than wall time, so other jobs sharing the core do not inflate the numbers
    (both sides are single-threaded, so the two agree on an idle machine).
    """
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.process_time()
        result = fn()
        best = min(best, time.process_time() - t0)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=62_000, help="images for the batch op")
    parser.add_argument("--pil-n", type=int, default=62_000, help="images for the Pillow loop")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--interpolation", nargs="*", default=["bicubic", "bilinear", "nearest"])
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.n, 28, 28), dtype=np.uint8)
    scales = rng.uniform(0.3, 1.0, args.n).astype(np.float32)
    pil_n = min(args.pil_n, args.n)

    print(f"{args.n} x 28x28 uint8, scales U[0.3, 1] (float32), one core, best of {args.repeats}")
    for interp in args.interpolation:
        t_ours, ours = _best_of(
            args.repeats, lambda i=interp: scale_about_centre(images, scales, None, i)
        )
        t_pil, ref = _best_of(
            1,
            lambda i=interp: np.stack(
                [pil_scale_about_centre(images[k], scales[k], None, i) for k in range(pil_n)]
            ),
        )
        same = np.array_equal(ours[:pil_n], ref)
        ours_rate, pil_rate = args.n / t_ours, pil_n / t_pil
        print(
            f"{interp:9s} ours {ours_rate:9.0f} img/s ({t_ours:6.3f} s)   "
            f"PIL loop {pil_rate:8.0f} img/s   speed-up {ours_rate / pil_rate:5.1f}x   "
            f"identical: {same}"
        )


if __name__ == "__main__":
    main()
