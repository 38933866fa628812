"""Benchmark: the MNIST Large Scale render op against the scipy recipe run one image at a time.

The workload is the reconstructed recipe of PROTOCOLS.md section 5 on the 10,000 Fashion-MNIST
test digits (Debian's copy; synthetic blobs if it is not installed, and the output says so) at
each of the 17 test scales 2 ** (k / 4), k = -4..12, on the 112 x 112 canvas:

* **ours**: ``render_large_scale`` on batches of ``--batch`` digits (default 256) sharing one
  scale: one matrix per scale (cached), two stacked GEMMs per batch, arctan;
* **reference**: the recipe written out here with scipy, one image at a time:
  ``gaussian_filter`` anti-aliasing (s < 1), ``map_coordinates(order=3, mode="grid-constant")``
  at the canvas pixel centres, ``gaussian_filter(sigma=7/8 s, truncate=4)``, arctan, float32.

Before anything is timed, the first ``--check`` digits of every scale are rendered both ways and
must agree to 1e-4 (the script stops otherwise); the reference's timed renders are compared with
ours afterwards too. The reference is slow, so it is timed on the first ``--ref-n`` digits of each
scale (default 1,000) and compared as a rate (images/s), which the output says. One extra row
renders the same digits at scales drawn uniformly from [1, 4] (the mixed-scale training file):
every sample then has its own matrices, built on the fly, the op's worst case.

Everything runs on one core: the BLAS thread pools are pinned to 1 (environment variables set
before numpy is imported, and threadpoolctl when it is installed), so the figures are per core.
Ours is timed ``--repeats`` times (median and best; CPU seconds too, so a noisy run shows),
the reference once. Nothing is asserted on time.

    python benchmarks/bench_large_scale.py            # 10,000 digits x 17 scales, about a minute
    python benchmarks/bench_large_scale.py --quick    # 1,000 digits x 5 scales, seconds
    python benchmarks/bench_large_scale.py --json out.json
"""

from __future__ import annotations

import os

# Pinned before numpy loads its BLAS: the figures are per core.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from _outputs import load_average, write_json  # noqa: E402
from scipy import ndimage  # noqa: E402

from scale_datasets.errors import SourceNotFoundError  # noqa: E402
from scale_datasets.ops.large_scale import TEST_SCALES, render_large_scale  # noqa: E402
from scale_datasets.sources import load_mnist_like  # noqa: E402

CANVAS = 112
ATOL = 1e-4
QUICK_SCALES = (0.5, 1.0, 2.0, 4.0, 8.0)


def pin_threads() -> str:
    """Limit every BLAS/OpenMP pool to one thread (threadpoolctl if installed); say what ran."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        return "BLAS threads: 1 (environment variables; threadpoolctl not installed)"
    threadpool_limits(1)
    pools = [f"{p['internal_api']} {p['num_threads']}" for p in threadpool_info()]
    return "BLAS threads (threadpoolctl): " + (", ".join(pools) or "no pool found")


def reference(digit: np.ndarray, scale: float) -> np.ndarray:
    """The recipe with scipy for one 28 x 28 digit -> (CANVAS, CANVAS) float32."""
    image = digit.astype(np.float64)
    if scale < 1:
        image = ndimage.gaussian_filter(
            image, 0.5 * math.sqrt(1 / scale**2 - 1), mode="constant", cval=0.0
        )
    h, w = image.shape
    centres = np.arange(CANVAS) + 0.5 - CANVAS / 2
    uu, vv = np.meshgrid(
        centres / scale + h / 2 - 0.5, centres / scale + w / 2 - 0.5, indexing="ij"
    )
    image = ndimage.map_coordinates(image, [uu, vv], order=3, mode="grid-constant", cval=0.0)
    image = ndimage.gaussian_filter(image, 7 / 8 * scale, mode="constant", cval=0.0, truncate=4.0)
    return ((2 / np.pi) * np.arctan(0.02 * (image - 128))).astype(np.float32)


def reference_all(digits: np.ndarray, scales: np.ndarray) -> np.ndarray:
    out = np.empty((len(digits), CANVAS, CANVAS), dtype=np.float32)
    for i, (digit, scale) in enumerate(zip(digits, scales, strict=True)):
        out[i] = reference(digit, float(scale))
    return out


def ours_all(digits: np.ndarray, scales: np.ndarray, batch: int) -> None:
    """Render every digit in batches, dropping each batch as it comes (as a build writes it
    out), so the timing holds the op and its own output allocation only."""
    for i in range(0, len(digits), batch):
        render_large_scale(digits[i : i + batch], scales[i : i + batch], CANVAS)


def timed(fn: Any) -> tuple[float, float, Any]:
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - t0, time.process_time() - c0, result


def load_digits(n: int) -> tuple[str, np.ndarray]:
    try:
        pool = load_mnist_like("fashion-mnist", download=False)
        return "Fashion-MNIST test", np.ascontiguousarray(pool.images[pool.n_train :][:n])
    except SourceNotFoundError:
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0:28, 0:28]
        centres = rng.uniform(8, 20, (n, 2, 1, 1))
        d2 = (yy - centres[:, 0]) ** 2 + (xx - centres[:, 1]) ** 2
        return "synthetic blobs", np.rint(255 * np.exp(-d2 / 30)).astype(np.uint8)


def run_case(
    name: str, digits: np.ndarray, scales: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    """Check, then time ours (repeats) on every digit and the reference on the first ref_n."""
    k = min(args.check, len(digits))
    check_diff = float(
        np.abs(
            render_large_scale(digits[:k], scales[:k]) - reference_all(digits[:k], scales[:k])
        ).max(initial=0.0)
    )
    if not check_diff <= ATOL:
        sys.exit(f"{name}: ours and the reference differ by {check_diff:.2e} > {ATOL:g}; stopping")
    r = min(args.ref_n, len(digits))
    # Warm-up, untimed: builds the matrices and lets the allocator settle.
    ours_all(digits, scales, args.batch)
    runs = [timed(lambda: ours_all(digits, scales, args.batch)) for _ in range(args.repeats)]
    ref_wall, ref_cpu, ref_out = timed(lambda: reference_all(digits[:r], scales[:r]))
    # A sample renders to the same bits in any batch, so this is what the timed passes made.
    ours_out = render_large_scale(digits[:r], scales[:r], CANVAS)
    walls = [w for w, _, _ in runs]
    return {
        "case": name,
        "images": len(digits),
        "check_items": k,
        "check_max_abs_diff": check_diff,
        "ours_wall_s": walls,
        "ours_cpu_s": [c for _, c, _ in runs],
        "ours_images_per_s": len(digits) / statistics.median(walls),
        "ours_best_images_per_s": len(digits) / min(walls),
        "reference_images": r,
        "reference_wall_s": ref_wall,
        "reference_cpu_s": ref_cpu,
        "reference_images_per_s": r / ref_wall,
        "timed_max_abs_diff": float(np.abs(ours_out - ref_out).max(initial=0.0)),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    threads = pin_threads()
    source, digits = load_digits(args.n)
    loadavg_before = os.getloadavg()
    cases = []
    for scale in args.scales:
        case = run_case(f"{scale:.3f}", digits, np.full(len(digits), scale), args)
        cases.append(case)
        print(
            f"  s = {scale:.3f}: ours {case['ours_images_per_s']:,.0f} img/s, reference "
            f"{case['reference_images_per_s']:,.0f} img/s",
            flush=True,
        )
    rng = np.random.default_rng(0)
    mixed = run_case("U[1, 4]", digits, rng.uniform(1.0, 4.0, len(digits)), args)
    ours_s = sum(statistics.median(c["ours_wall_s"]) for c in cases)
    ref_s = sum(c["reference_wall_s"] * c["images"] / c["reference_images"] for c in cases)
    return {
        "source": source,
        "digits": len(digits),
        "canvas": CANVAS,
        "scales": list(args.scales),
        "batch": args.batch,
        "repeats": args.repeats,
        "quick": args.quick,
        "threads": threads,
        "machine": platform.processor() or platform.machine(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "cases": cases,
        "mixed": mixed,
        "total": {
            "images": len(digits) * len(cases),
            "ours_s": ours_s,
            "reference_s_extrapolated": ref_s,
            "ours_images_per_s": len(digits) * len(cases) / ours_s,
            "reference_images_per_s": len(digits) * len(cases) / ref_s,
        },
        "loadavg_before": loadavg_before,
        "loadavg_after": os.getloadavg(),
    }


def report(r: dict[str, Any]) -> None:
    t = r["total"]
    lines = [
        "",
        f"{r['source']}: {r['digits']:,} digits 28x28 -> {r['canvas']}x{r['canvas']} float32; "
        f"ours in batches of {r['batch']:,} sharing a scale, median (best) of {r['repeats']}; "
        f"the reference per item on the first {r['cases'][0]['reference_images']:,} digits of "
        "each scale, once",
        f"{r['threads']}; numpy {r['numpy']}, scipy {r['scipy']}, {r['machine']}",
        "",
        f"{'scale':>8s}{'ours img/s':>13s}{'(best)':>10s}{'cpu s':>8s}{'ref img/s':>11s}"
        f"{'x ref':>8s}{'max |diff|':>12s}",
    ]
    worst = 0.0
    for c in [*r["cases"], r["mixed"]]:
        ratio = c["ours_images_per_s"] / c["reference_images_per_s"]
        diff = max(c["check_max_abs_diff"], c["timed_max_abs_diff"])
        worst = max(worst, diff)
        lines.append(
            f"{c['case']:>8s}{c['ours_images_per_s']:13,.0f}{c['ours_best_images_per_s']:10,.0f}"
            f"{statistics.median(c['ours_cpu_s']):8.2f}{c['reference_images_per_s']:11,.0f}"
            f"{ratio:7.0f}x{diff:12.1e}"
        )
    lines += [
        "",
        f"all {len(r['cases'])} scales, {t['images']:,} renders: ours {t['ours_s']:.1f} s "
        f"({t['ours_images_per_s']:,.0f} img/s per core), reference "
        f"{t['reference_s_extrapolated']:.0f} s extrapolated from its rate per scale "
        f"({t['reference_images_per_s']:,.0f} img/s): "
        f"{t['ours_images_per_s'] / t['reference_images_per_s']:.0f}x",
        f"outputs equal: max |ours - reference| {worst:.1e} over every compared item "
        f"(limit {ATOL:g}; a float32 step near 0.76 is 6e-8)",
        "U[1, 4]: every sample at its own scale, so its matrices are built per sample (cache "
        "misses): the op's worst case",
        f"{load_average(r)} (wall >> cpu s means a noisy run)",
    ]
    if r["quick"]:
        lines.append("--quick: few digits and scales, one repeat; figures are not representative")
    print("\n".join(lines))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="test digits rendered per scale")
    parser.add_argument("--batch", type=int, default=256, help="digits per call of ours")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes of ours")
    parser.add_argument("--ref-n", type=int, default=1_000, help="digits per scale, reference")
    parser.add_argument("--check", type=int, default=100, help="digits per scale checked first")
    parser.add_argument(
        "--quick", action="store_true", help="1,000 digits, 5 scales, 50 reference items"
    )
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    args.scales = TEST_SCALES
    if args.quick:
        args.n, args.ref_n, args.check, args.repeats = 1_000, 50, 20, 1
        args.scales = QUICK_SCALES
    if min(args.n, args.batch, args.repeats, args.ref_n) < 1 or args.check < 0:
        parser.error("--n, --batch, --repeats and --ref-n must be >= 1, --check >= 0")
    return args


def main() -> None:
    args = parse_args()
    result = run(args)
    report(result)
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
