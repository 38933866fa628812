"""Benchmark: the batched scale-equivariant nonlinearity against the loop over resolutions.

One forward + backward step of ``ScaleEqNonlinearity`` (default: the MNIST layer, batch 128,
32 channels, 28 x 28, base 6, increment 1, instance norm, ReLU, float32) side by side in one
process with

* ``reference_forward``: the loop over the resolutions that bring new rings, written from the
  definition (rfft2 of the maps once, as the published loop does; per resolution: crop +
  irfft2, InstanceNorm2d, sigma, fft2, copy the new ring),
* the same loop with ``resample(x, r)`` per resolution (``--literal``: an rfft2 of the full maps
  per resolution, the definition taken literally),
* a plain ``ifft2 -> relu -> fft2`` round trip, for scale (what a non-equivariant pointwise
  nonlinearity costs).

Times are wall-clock per step (median and best of ``--repeats``, the methods interleaved so a
noisy neighbour hits them alike; CUDA timings synchronise). Peak memory is measured per method
in a fresh process (CPU: the peak resident size over one step minus the size before it, via
/proc/self/clear_refs and VmHWM, so it includes the output and gradient tensors; CUDA:
``torch.cuda.max_memory_allocated``). "outputs equal" compares the
layer's output and input gradient with the loop's (max abs difference, relative to the largest
value). Nothing is asserted on time.

    python benchmarks/bench_fourier_nonlin.py [--quick] [--device cuda] [--threads T]
        [--batch 128] [--channels 32] [--size 28] [--base 6] [--increment 1] [--no-norm]
        [--pool 1] [--repeats 7] [--literal] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import statistics
import time
from collections.abc import Callable

import torch

from scale_eq.fourier.nonlinearity import ScaleEqNonlinearity
from scale_eq.fourier.reference import reference_forward


def _setup(args: argparse.Namespace) -> tuple[ScaleEqNonlinearity, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    device = torch.device(args.device)
    layer = ScaleEqNonlinearity(
        torch.relu,
        base_res=args.base,
        max_res=args.size,
        channels=args.channels,
        normalization=None if args.no_norm else "instance",
        increment=args.increment,
        pool_window=args.pool,
    ).to(device)
    if layer.norms is not None:  # not the identity affine, so the norm's gradients matter
        with torch.no_grad():
            for norm in layer.norms.values():
                norm.weight.uniform_(0.5, 1.5)
                norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(args.batch, args.channels, args.size, args.size, device=device)
    spectrum = torch.fft.fft2(x, norm="forward")
    m = layer.output_size(args.size)
    probe = torch.randn(args.batch, args.channels, m, m, dtype=torch.complex64, device=device)
    return layer, spectrum, probe


def _methods(layer: ScaleEqNonlinearity) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    def round_trip(s: torch.Tensor) -> torch.Tensor:
        return torch.fft.fft2(torch.relu(torch.fft.ifft2(s, norm="forward").real), norm="forward")

    return {
        "batched layer (ours)": layer,
        "loop (reference)": lambda s: reference_forward(layer, s),
        "loop, resample(x, r) per r": lambda s: reference_forward(layer, s, literal=True),
        "ifft2-relu-fft2 round trip": round_trip,
    }


def _step(fn: Callable, spectrum: torch.Tensor, probe: torch.Tensor) -> tuple:
    """One forward + backward; returns (output, input gradient)."""
    s = spectrum.detach().requires_grad_()
    out = fn(s)
    if out.shape != probe.shape:  # the round trip keeps N when the layer pools
        out.real.sum().backward()
    else:
        out.backward(probe)
    return out.detach(), s.grad


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _peak_child(args: argparse.Namespace, name: str, queue: mp.Queue) -> None:
    """In a fresh process: the peak memory of one step of `name`, over what the inputs hold.

    A fresh process holds no freed memory the step could reuse unseen; a one-sample step first
    sets up the libraries (FFT plans, thread pools) and the layer's plan, which are not
    counted."""
    torch.set_num_threads(args.threads)
    layer, spectrum, probe = _setup(args)
    fn = _methods(layer)[name]
    if args.device == "cuda":
        _step(fn, spectrum, probe)  # the caching allocator reports live bytes: warm-up is fine
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        _step(fn, spectrum, probe)
        torch.cuda.synchronize()
        queue.put((torch.cuda.max_memory_allocated() - base) / 2**20)
    else:
        _step(fn, spectrum[:1], probe[:1])  # one sample: library and plan set-up, not counted
        base = _rss_reset()
        _step(fn, spectrum, probe)
        queue.put((_rss_peak() - base) / 1024)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _rss_reset() -> int:
    """Reset the peak resident size (Linux: clear_refs 5) and return the current one, KiB.

    Without /proc, fall back to ``ru_maxrss``, a high-water mark that cannot be reset: then
    the figure is only what the step adds above the process's earlier peak (imports)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return _status_kib("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _rss_peak() -> int:
    try:
        return _status_kib("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak(args: argparse.Namespace, name: str) -> float:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_child, args=(args, name, queue))
    proc.start()
    value = queue.get()
    proc.join()
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="small batch, 2 repeats: smoke test")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--base", type=int, default=6)
    parser.add_argument("--increment", type=int, default=1)
    parser.add_argument("--pool", type=int, default=1)
    parser.add_argument("--no-norm", action="store_true")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--literal", action="store_true", help="also time resample(x, r) per r")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.repeats = min(args.batch, 16), 2
    torch.set_num_threads(args.threads)

    layer, spectrum, probe = _setup(args)
    methods = _methods(layer)
    if not args.literal:
        del methods["loop, resample(x, r) per r"]
    results: dict[str, dict] = {}
    for name, fn in methods.items():  # warm-up (plans, allocator) and the outputs to compare
        results[name] = {"times": [], "out": _step(fn, spectrum, probe)}
    for _ in range(args.repeats):
        for name, fn in methods.items():
            _sync(args.device)
            t0 = time.perf_counter()
            _step(fn, spectrum, probe)
            _sync(args.device)
            results[name]["times"].append(time.perf_counter() - t0)

    ours = results["batched layer (ours)"]
    ref = results["loop (reference)"]
    (o_out, o_grad), (r_out, r_grad) = ours["out"], ref["out"]
    d_out = (o_out - r_out).abs().max().item() / r_out.abs().max().item()
    d_grad = (o_grad - r_grad).abs().max().item() / r_grad.abs().max().item()
    equal = d_out < 1e-4 and d_grad < 1e-4

    plan = layer._plan(args.size, torch.float32, torch.device(args.device))
    where = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor()
    print(
        f"ScaleEqNonlinearity forward + backward, batch {args.batch} x {args.channels} channels, "
        f"{args.size}x{args.size}, base {args.base}, increment {args.increment}, pool "
        f"{args.pool}, {'no norm' if args.no_norm else 'instance norm'}, ReLU, float32"
    )
    print(
        f"device {args.device} ({where or platform.machine()}), {args.threads} thread(s), "
        f"torch {torch.__version__}; {len(plan.steps)} resolutions bring rings: "
        f"{[s.res for s in plan.steps]}; buckets padded to {[b.res for b in plan.buckets]}"
    )
    print(f"{'method':30s} {'median ms':>10s} {'best ms':>9s} {'x ours':>7s} {'peak MiB':>9s}")
    best_ours = min(ours["times"])
    figures = {}
    for name, r in results.items():
        med, best = statistics.median(r["times"]) * 1e3, min(r["times"]) * 1e3
        peak = float("nan") if args.no_memory else _peak(args, name)
        ratio = best / (best_ours * 1e3)
        figures[name] = {"median_ms": med, "best_ms": best, "ratio": ratio, "peak_mib": peak}
        print(f"{name:30s} {med:10.1f} {best:9.1f} {ratio:7.2f} {peak:9.1f}")
    speedup = min(ref["times"]) / best_ours
    print(
        f"speed-up of the batched layer over the loop: {speedup:.2f}x (best of {args.repeats}; "
        f"median {statistics.median(ref['times']) / statistics.median(ours['times']):.2f}x); "
        "target >= 5x"
    )
    print(
        f"outputs equal: {'yes' if equal else 'no'} (max abs diff / max: output {d_out:.1e}, "
        f"input gradient {d_grad:.1e})"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "figures": figures, "speedup": speedup}, fh, indent=2)


if __name__ == "__main__":
    main()
