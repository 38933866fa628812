"""Benchmark: the batched Fourier layers against a per-resolution loop from the definition.

Two comparisons, each side by side in one process on the same inputs and weights:

1. **nonlinearity**: ``ScaleEqNonlinearity`` forward + backward (the first layer of
   ``fourier_mnist``: batch 128, 32 channels, 28 x 28, base 6, increment 1, instance norm,
   ReLU) against :func:`loop_nonlinearity`, written here from the definition: for every
   resolution r of the grid that brings new rings, crop the input spectrum to r, invert it on
   the r grid, apply r's instance norm and sigma (with pooling: anti-alias and max-pool), take
   the DFT and copy the new rings into the output.
2. **model**: ``fourier_mnist`` forward + cross-entropy + backward (batch 128 at 28 x 28, train
   mode) against the same model with every nonlinearity replaced by that loop and the head by
   :func:`loop_head_features` (per resolution: mask the spectrum, inverse FFT on the 28 grid,
   max-pool). Convolutions, skips and the MLP are shared, so this ratio is below the layer's.

"outputs equal" is checked in float64 on a small batch, where ReLU's kink cannot flip between
the methods: the layer's output and input gradient, and the model's logits and every parameter
gradient (max abs difference over the largest value). Timings are float32: the median and best
of ``--repeats`` steps, the methods interleaved so a noisy neighbour hits them alike (CUDA
timings synchronise). Peak memory is one step in a fresh process (``_memory.py``). Nothing is
asserted on time.

    python benchmarks/bench_fourier.py [--quick] [--device cuda] [--threads T] [--batch 128]
        [--repeats 5] [--only layer|model] [--no-memory] [--json PATH]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import statistics
import types
from collections.abc import Callable

import torch
import torch.nn.functional as F
from _memory import in_fresh_process, peak_mib
from _timing import bench_parser, time_steps

from scale_datasets.ops.fourier import resample, resample_spectrum
from scale_eq import create_model
from scale_eq.fourier._layout import from_mode_major, mode_major
from scale_eq.fourier.head import ScaleConsistentHead
from scale_eq.fourier.nonlinearity import ScaleEqNonlinearity

TARGET = 5.0
SIZE = 28


# ------------------------------------------------------------------ the loops, from the definition


def _ring_modes(lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed (kx, ky) of every 2D mode with lo <= max(|kx|, |ky|) <= hi."""
    k = torch.arange(-hi, hi + 1)
    kx, ky = torch.meshgrid(k, k, indexing="ij")
    sel = torch.maximum(kx.abs(), ky.abs()) >= lo
    return kx[sel], ky[sel]


def loop_nonlinearity(layer: ScaleEqNonlinearity, spectrum: torch.Tensor) -> torch.Tensor:
    """Output ring k = ring k of DFT(sigma(norm_r(D_r x))), r the first resolution keeping k."""
    spectrum = spectrum.contiguous()  # (B, C, N, N) memory, whatever layout the conv gave
    n, p = spectrum.shape[-1], layer.pool_window
    size = layer.output_size(n)
    out = spectrum.new_zeros(*spectrum.shape[:-2], size, size)
    done = -1  # highest ring written so far
    for r in layer.resolutions(n):
        q = math.ceil(r / p)  # the grid the rings are read from
        top = (q - 1) // 2
        if top <= done:
            continue  # brings no new ring
        y = torch.fft.ifft2(resample_spectrum(spectrum, r), norm="forward").real  # D_r x
        if layer.norms is not None:
            y = layer.norms[str(r)](y)
        y = layer.activation(y)
        if p > 1:
            y = F.max_pool2d(resample(resample(y, q), r), p, p, ceil_mode=True)
        z = torch.fft.fft2(y, norm="forward")
        kx, ky = _ring_modes(done + 1, top)
        out[..., kx % size, ky % size] = z[..., kx % q, ky % q]
        done = top
    return out


def loop_head_features(head: ScaleConsistentHead, spectrum: torch.Tensor) -> torch.Tensor:
    """Per resolution r: keep |k| <= (r - 1) // 2 on the grid, inverse FFT, max-pool."""
    spectrum = spectrum.contiguous()
    g, n = head.grid_size, spectrum.shape[-1]
    on_grid = resample_spectrum(spectrum, g)
    k = torch.arange(g)
    freq = torch.minimum(k, g - k)
    pooled = []
    for r in head.resolutions(n):
        m = (min(r, g) - 1) // 2
        mask = (freq[:, None] <= m) & (freq[None, :] <= m)
        img = torch.fft.ifft2(on_grid * mask, norm="forward").real
        pooled.append(F.max_pool2d(img, head.pool_window, ceil_mode=True).flatten(1))
    return torch.stack(pooled, dim=1)


def loop_model(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` (same weights) whose nonlinearities and head run the loops."""
    twin = copy.deepcopy(model)
    for module in twin.modules():
        if isinstance(module, ScaleEqNonlinearity):
            module.forward = types.MethodType(loop_nonlinearity, module)
        elif isinstance(module, ScaleConsistentHead):
            module.features = types.MethodType(loop_head_features, module)
    return twin


# ------------------------------------------------------------------ set-up


def make_layer(batch: int, device: str, dtype: torch.dtype) -> tuple:
    """The first nonlinearity of fourier_mnist, a spectrum and an output probe."""
    torch.manual_seed(0)
    layer = ScaleEqNonlinearity(
        torch.relu, base_res=6, max_res=SIZE, channels=32, normalization="instance"
    )
    with torch.no_grad():  # not the identity affine, so the norms' gradients matter
        for norm in layer.norms.values():
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    layer = layer.to(device=device, dtype=dtype)
    x = torch.randn(batch, 32, SIZE, SIZE, device=device, dtype=dtype)
    spectrum = torch.fft.fft2(x, norm="forward")
    probe = torch.randn(batch, 32, SIZE, SIZE, device=device, dtype=spectrum.dtype)
    return layer, spectrum, probe


def in_model_layout(t: torch.Tensor) -> torch.Tensor:
    """The same values laid out as inside the model: mode-major, as the convolution hands
    spectra to the nonlinearity (and gradients back to it)."""
    return from_mode_major(mode_major(t).clone(), t.shape[-2], t.shape[-1])


def make_model(batch: int, device: str, dtype: torch.dtype, train: bool) -> tuple:
    torch.manual_seed(0)
    model = create_model("fourier_mnist").to(device=device, dtype=dtype).train(train)
    x = torch.randn(batch, 1, SIZE, SIZE, device=device, dtype=dtype)
    y = torch.randint(0, 10, (batch,), device=device)
    return model, x, y


def layer_step(fn: Callable, spectrum: torch.Tensor, probe: torch.Tensor) -> list[torch.Tensor]:
    s = spectrum.detach().requires_grad_()
    out = fn(s)
    out.backward(probe)
    return [out.detach(), s.grad]


def model_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    logits = model(x)
    F.cross_entropy(logits, y).backward()
    return [logits.detach(), *(p.grad for p in model.parameters())]


def steps(
    kind: str, batch: int, device: str, dtype: torch.dtype, train: bool = True
) -> dict[str, Callable]:
    """``{method: step()}`` for the comparison ``kind`` ("layer" or "model"); ``train=False``
    puts the model in eval mode (no dropout; the layer has no mode-dependent part)."""
    if kind == "layer":
        layer, spectrum, probe = make_layer(batch, device, dtype)
        inside, probe_inside = in_model_layout(spectrum), in_model_layout(probe)
        return {
            "batched (ours)": lambda: layer_step(layer, inside, probe_inside),
            "loop": lambda: layer_step(lambda s: loop_nonlinearity(layer, s), inside, probe_inside),
            "ours, fft2 layout": lambda: layer_step(layer, spectrum, probe),
        }
    model, x, y = make_model(batch, device, dtype, train)
    twin = loop_model(model)
    return {
        "batched (ours)": lambda: model_step(model, x, y),
        "loop": lambda: model_step(twin, x, y),
    }


# ------------------------------------------------------------------ measurements


def max_rel_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Largest |a - b| / max|b| over corresponding tensors."""
    return max(
        ((u - v).abs().max() / v.abs().max().clamp_min(1e-300)).item()
        for u, v in zip(a, b, strict=True)
    )


def equality(kind: str, device: str) -> float:
    """Float64, batch 4, eval mode (no dropout): the loop's and ours' outputs and gradients."""
    outs = {name: fn() for name, fn in steps(kind, 4, device, torch.float64, train=False).items()}
    loop = outs.pop("loop")
    return max(max_rel_diff(out, loop) for out in outs.values())


def peak_of(kind: str, name: str, batch: int, device: str, threads: int) -> float:
    """In a fresh process: peak MiB of one float32 step (a batch-1 step warms up first)."""
    torch.set_num_threads(threads)
    run = steps(kind, batch, device, torch.float32)[name]
    warm = steps(kind, 1, device, torch.float32)[name]
    return peak_mib(run, warm, device)


def compare(kind: str, args: argparse.Namespace) -> dict:
    diff = equality(kind, args.device)
    times = time_steps(
        steps(kind, args.batch, args.device, torch.float32), args.repeats, args.device
    )
    figures: dict = {"max_rel_diff_float64": diff, "methods": {}}
    for name, ts in times.items():
        peak = (
            float("nan")
            if args.no_memory
            else in_fresh_process(peak_of, kind, name, args.batch, args.device, args.threads)
        )
        figures["methods"][name] = {
            "median_ms": statistics.median(ts) * 1e3,
            "best_ms": min(ts) * 1e3,
            "peak_mib": peak,
            "speedup_median": statistics.median(times["loop"]) / statistics.median(ts),
        }
    ours, loop = times["batched (ours)"], times["loop"]
    figures["speedup_median"] = statistics.median(loop) / statistics.median(ours)
    figures["speedup_best"] = min(loop) / min(ours)
    return figures


def report(kind: str, f: dict) -> None:
    title = {
        "layer": "ScaleEqNonlinearity (32 ch, base 6, increment 1, instance norm, ReLU)",
        "model": "fourier_mnist (594,122 parameters) with cross-entropy",
    }[kind]
    print(f"\n{title}: forward + backward, float32")
    print(f"  {'method':18s} {'median ms':>10s} {'best ms':>9s} {'peak MiB':>9s} {'vs loop':>8s}")
    for name, m in f["methods"].items():
        print(
            f"  {name:18s} {m['median_ms']:10.1f} {m['best_ms']:9.1f} {m['peak_mib']:9.1f} "
            f"{m['speedup_median']:7.2f}x"
        )
    print(
        f"  speed-up over the loop: {f['speedup_median']:.2f}x median, {f['speedup_best']:.2f}x "
        f"best (target >= {TARGET:g}x); outputs equal: "
        f"{'yes' if f['max_rel_diff_float64'] < 1e-10 else 'NO'} "
        f"(float64 max rel diff {f['max_rel_diff_float64']:.1e})"
    )


def main() -> None:
    parser = bench_parser(__doc__, repeats=5, quick="batch 8, 1 repeat: smoke test")
    parser.add_argument("--only", choices=["layer", "model"])
    args = parser.parse_args()
    if args.quick:
        args.batch, args.repeats = min(args.batch, 8), 1
    torch.set_num_threads(args.threads)
    where = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor()
    print(
        f"batch {args.batch} at {SIZE}x{SIZE}; device {args.device} "
        f"({where or platform.machine()}), {args.threads} thread(s), torch {torch.__version__}"
    )
    results = {}
    for kind in ["layer", "model"] if args.only is None else [args.only]:
        results[kind] = compare(kind, args)
        report(kind, results[kind])
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
