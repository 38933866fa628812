"""Micro-benchmark: Dynamic Scale MNIST renders, support-only numpy and torch against Pillow.

The workload is the protocol's render (PROTOCOLS.md section 4): 28x28 Fashion-MNIST items
zero-padded onto a 168x168 canvas and scaled about its centre by a factor drawn log-uniform on
[1, 8] (float32, as stored), BICUBIC, fill 0. Side by side in one process, on the same items:

* **numpy**: ``scale_on_canvas`` (only each digit's support, bit-identical to Pillow), one call
  per batch of ``--batches`` (default 128 and 1024); single-threaded;
* **numpy full canvas**: ``scale_about_centre`` on the 168x168 padded canvases (what rendering
  the padded image costs with the same vectorised code);
* **PIL**: one ``Image.transform`` per item on its padded canvas (padding included), the
  protocol's definition and Basting's per-item render without the PNG decode or tensor
  conversion;
* **torch f64 / f32**: ``scale_on_canvas_torch`` on ``--device`` (inputs already there, CUDA
  timings synchronised), ``--threads`` CPU threads.

Outputs are checked first: numpy against Pillow (identical pixels) and torch against numpy
(max difference, at most 1, and the fraction of pixels that differ). Timings are wall seconds,
the median (and best) of ``--repeats`` calls with the methods interleaved
(``_timing.time_steps``); PIL is timed on ``--pil-n`` items, ``--repeats // 2`` times. Ratios
use the medians. Nothing is asserted on time.

    python benchmarks/bench_dynamic_render.py [--quick] [--device cuda] [--threads T]
        [--batches 128 1024] [--repeats 5] [--pil-n 512] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics

import numpy as np
import torch
from _timing import time_steps
from PIL import Image

from scale_datasets.errors import SourceNotFoundError
from scale_datasets.ops.canvas import scale_on_canvas
from scale_datasets.ops.pil_affine import affine_coefficients
from scale_datasets.ops.scaling import scale_about_centre
from scale_datasets.ops.torch_scaling import scale_on_canvas_torch
from scale_datasets.sources import load_mnist_like

CANVAS = 168
LO, HI = 1.0, 8.0


def pil_render(digits: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """The protocol's definition, one item at a time: pad onto the canvas, Pillow's transform."""
    out = np.empty((len(digits), CANVAS, CANVAS), dtype=np.uint8)
    h, w = digits.shape[1:]
    top, left = (CANVAS - h) // 2, (CANVAS - w) // 2
    for i, (digit, scale) in enumerate(zip(digits, scales, strict=True)):
        padded = np.zeros((CANVAS, CANVAS), dtype=np.uint8)
        padded[top : top + h, left : left + w] = digit
        data = affine_coefficients(float(scale), (CANVAS, CANVAS), (CANVAS, CANVAS))
        img = Image.fromarray(padded).transform(
            (CANVAS, CANVAS), Image.Transform.AFFINE, data, Image.Resampling.BICUBIC
        )
        out[i] = np.asarray(img)
    return out


def full_canvas(digits: np.ndarray, scales: np.ndarray) -> np.ndarray:
    h, w = digits.shape[1:]
    top, left = (CANVAS - h) // 2, (CANVAS - w) // 2
    padded = np.pad(digits, ((0, 0), (top, CANVAS - h - top), (left, CANVAS - w - left)))
    return scale_about_centre(padded, scales, CANVAS)


def load_pool() -> tuple[str, np.ndarray]:
    try:
        return "Fashion-MNIST", load_mnist_like("fashion-mnist", download=False).images
    except SourceNotFoundError:
        # Soft random strokes, so the benchmark still runs without the Debian package.
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0:28, 0:28]
        centres = rng.uniform(8, 20, (4096, 2, 1, 1))
        d2 = (yy - centres[:, 0]) ** 2 + (xx - centres[:, 1]) ** 2
        return "synthetic blobs", np.rint(255 * np.exp(-d2 / 30)).astype(np.uint8)


def check(digits: np.ndarray, scales: np.ndarray, pil_n: int, device: str) -> dict:
    """numpy against Pillow on the first pil_n items, torch against numpy on all."""
    ours = scale_on_canvas(digits, scales, CANVAS)
    result = {
        "numpy_equals_pil": bool(
            np.array_equal(ours[:pil_n], pil_render(digits[:pil_n], scales[:pil_n]))
        )
    }
    result["full_canvas_equals_numpy"] = bool(np.array_equal(full_canvas(digits, scales), ours))
    d, s = torch.from_numpy(digits).to(device), torch.from_numpy(scales).to(device)
    for name, dtype in (("f64", torch.float64), ("f32", torch.float32)):
        got = scale_on_canvas_torch(d, s, CANVAS, compute_dtype=dtype).cpu().numpy()
        diff = np.abs(got.astype(np.int16) - ours)
        result[f"torch_{name}_max_diff"] = int(diff.max())
        result[f"torch_{name}_frac_diff"] = float(np.mean(diff > 0))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="smoke test: few items and repeats")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pil-n", type=int, default=512, help="items rendered by Pillow")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.pil_n = 2, min(args.pil_n, 64)
    torch.set_num_threads(args.threads)

    source, pool = load_pool()
    rng = np.random.default_rng(0)
    n = max(args.batches)
    digits = np.ascontiguousarray(pool[rng.choice(len(pool), n, replace=False)])
    scales = np.exp(rng.uniform(np.log(LO), np.log(HI), n)).astype(np.float32)
    pil_n = min(args.pil_n, n)

    checks = check(digits, scales, pil_n, args.device)
    device = args.device
    td, ts = torch.from_numpy(digits).to(device), torch.from_numpy(scales).to(device)
    results: list[dict] = []
    pil_times = time_steps(
        {"pil": lambda: pil_render(digits[:pil_n], scales[:pil_n])},
        max(1, args.repeats // 2),
        "cpu",
    )
    pil_rate = pil_n / statistics.median(pil_times["pil"])
    for b in args.batches:
        fns = {
            "numpy": lambda b=b: scale_on_canvas(digits[:b], scales[:b], CANVAS),
            "numpy full canvas": lambda b=b: full_canvas(digits[:b], scales[:b]),
            f"torch f64 ({device})": lambda b=b: scale_on_canvas_torch(
                td[:b], ts[:b], CANVAS, compute_dtype=torch.float64
            ),
            f"torch f32 ({device})": lambda b=b: scale_on_canvas_torch(
                td[:b], ts[:b], CANVAS, compute_dtype=torch.float32
            ),
        }
        times = time_steps(fns, args.repeats, device)
        numpy_rate = b / statistics.median(times["numpy"])
        for name, ts_ in times.items():
            rate = b / statistics.median(ts_)
            results.append(
                dict(
                    method=name,
                    batch=b,
                    images_per_s=rate,
                    best_images_per_s=b / min(ts_),
                    vs_pil=rate / pil_rate,
                    vs_numpy=rate / numpy_rate,
                )
            )
    pil_best = pil_n / min(pil_times["pil"])
    results.append(
        dict(
            method="PIL per item",
            batch=1,
            images_per_s=pil_rate,
            best_images_per_s=pil_best,
            vs_pil=1.0,
        )
    )

    print(
        f"{source}: {n} items 28x28 on a {CANVAS}x{CANVAS} canvas, scales log-uniform "
        f"[{LO:g}, {HI:g}] (float32), bicubic; median of {args.repeats} (PIL: {pil_n} items); "
        f"torch {torch.__version__} with {args.threads} thread(s), numpy single-threaded; "
        f"{platform.processor() or platform.machine()}"
    )
    print(
        f"checks: numpy == PIL on {pil_n} items: {checks['numpy_equals_pil']}; "
        f"full canvas == numpy: {checks['full_canvas_equals_numpy']}; "
        f"torch f64 max diff {checks['torch_f64_max_diff']} "
        f"({checks['torch_f64_frac_diff']:.1e} of pixels), "
        f"f32 max diff {checks['torch_f32_max_diff']} ({checks['torch_f32_frac_diff']:.1e})"
    )
    print(
        f"{'method':24s} {'batch':>6s} {'images/s':>10s} {'best':>10s} {'x PIL':>8s} "
        f"{'x numpy':>8s}"
    )
    for r in results:
        vs_numpy = f"{r['vs_numpy']:8.2f}" if "vs_numpy" in r else f"{'':8s}"
        print(
            f"{r['method']:24s} {r['batch']:6d} {r['images_per_s']:10.0f} "
            f"{r['best_images_per_s']:10.0f} {r['vs_pil']:8.1f} {vs_numpy}"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "checks": checks, "results": results}, fh, indent=2)
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
