"""Benchmark: a training step of the learnable-scale SESN against the same model with fixed scales.

Side by side in one process, batch 128 at 28 x 28 (MNIST-Scale), one step = forward,
cross-entropy, backward and an Adam step (scales in their own parameter group):

* **learnable (ours)**: ``sesn_mnist_isr`` (three layers, each with learned sigma_basis and
  ISR, init 2 and 3: scales 2, 3.46, 6, K = 17); the Hermite basis is rebuilt, differentiably,
  at every step;
* **fixed**: the same architecture with the same scales fixed (``learn="fixed"``): the basis is
  built once and cached;
* **learnable, looped basis**: the learnable model with its basis rebuilt the way research code
  does it, one Hermite function at a time in a Python loop (the overhead Basting et al. call
  significant), for context.

Both learnable variants are checked to give the fixed model's logits (same weights, eval mode,
float64) before timing: at their init the scales are the fixed ones. Times are the median and
best of ``--repeats`` steps, methods interleaved; peak memory is one step in a fresh process
(``_memory.py``). The target is learnable <= 1.3x fixed. Nothing is asserted on time.

    python benchmarks/bench_sesn.py [--quick] [--device cuda] [--threads T] [--batch 128]
        [--repeats 7] [--no-memory] [--json PATH]
"""

from __future__ import annotations

import json
import platform
import statistics
from collections.abc import Callable

import torch
import torch.nn.functional as F
from _memory import in_fresh_process, peak_mib
from _timing import bench_parser, time_steps

from scale_eq import create_model, parameter_groups
from scale_eq.sesn import BasisSpec, ScaleSpec, hermite_functions_1d, support_sizes
from scale_eq.sesn.layers import _ScaleConv
from scale_eq.sesn.models import BASIS_SCALAR, sesn_mnist

TARGET = 1.3
METHODS = ("learnable (ours)", "fixed", "learnable, looped basis")


def looped_basis(scales: torch.Tensor, kernel_size: int, spec: BasisSpec) -> torch.Tensor:
    """Basis B built one function at a time (the research-code way); same values as ours."""
    sizes = support_sizes(kernel_size, [float(s) for s in scales.detach()])
    per_scale = []
    for i, n in enumerate(sizes):
        x = torch.arange(n, dtype=scales.dtype, device=scales.device) - n // 2
        funcs = []
        sub = 0
        while len(funcs) < spec.effective_size**2:
            sigma = scales[i] / spec.mult**sub
            h = hermite_functions_1d(x, sigma[None], spec.max_order)[0]  # every order at sigma
            for ky in range(spec.max_order + 1):
                for kx in range(spec.max_order + 1 - ky):
                    funcs.append(torch.outer(h[kx], h[ky]))
            sub += 1
        block = torch.stack(funcs[: spec.effective_size**2])
        pad = (kernel_size - n) // 2
        per_scale.append(F.pad(block, (pad, pad, pad, pad)))
    basis = torch.stack(per_scale, dim=1)
    norm = basis[:, 0].square().sum((-2, -1)).sqrt()
    return basis / norm[:, None, None, None]


def _looped_basis_of(conv: _ScaleConv) -> Callable[..., torch.Tensor]:
    def basis(dtype: torch.dtype | None = None) -> torch.Tensor:
        dtype = dtype or conv.weight.dtype
        return looped_basis(conv.scales().to(dtype), conv.kernel_size(), conv.basis_spec)

    return basis


def use_looped_basis(model: torch.nn.Module) -> None:
    """Make every scale conv of ``model`` rebuild its basis with :func:`looped_basis`."""
    for conv in model.modules():
        if isinstance(conv, _ScaleConv):
            conv.basis = _looped_basis_of(conv)  # type: ignore[method-assign]


def make(name: str, device: str, dtype: torch.dtype) -> torch.nn.Module:
    torch.manual_seed(0)  # same weights for every method
    if name == "fixed":
        spec = ScaleSpec.geometric(2.0, 3.0, 3, learn="fixed")
        model = sesn_mnist(spec, BASIS_SCALAR)
    else:
        model = create_model("sesn_mnist_isr")
        if name == "learnable, looped basis":
            use_looped_basis(model)
    return model.to(device=device, dtype=dtype)


def trainer(name: str, batch: int, device: str) -> Callable[[], None]:
    model = make(name, device, torch.float32).train()
    opt = torch.optim.Adam(parameter_groups(model, 1e-3, scale_lr=1e-3))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 1, 28, 28, generator=g).to(device)
    y = torch.randint(0, 10, (batch,), generator=g).to(device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def logits_agree(device: str) -> float:
    """Max |logit difference| of the learnable variants against fixed (float64, eval)."""
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    outs = {}
    for name in METHODS:
        model = make(name, device, torch.float64).eval()
        with torch.no_grad():
            outs[name] = model(x.to(device)).cpu()
    return max((outs[n] - outs["fixed"]).abs().max().item() for n in METHODS)


def peak_of(name: str, batch: int, device: str, threads: int) -> float:
    torch.set_num_threads(threads)
    run, warm = trainer(name, batch, device), trainer(name, 2, device)
    run()  # Adam's state exists after the first step: count a steady-state step
    return peak_mib(run, warm, device)


def main() -> None:
    parser = bench_parser(__doc__, repeats=7, quick="batch 16, 2 repeats: smoke test")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.repeats = min(args.batch, 16), 2
    torch.set_num_threads(args.threads)

    diff = logits_agree(args.device)
    steps = {name: trainer(name, args.batch, args.device) for name in METHODS}
    times = time_steps(steps, args.repeats, args.device)  # warm-up: Adam state, cached bases

    where = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor()
    print(
        f"sesn_mnist_isr training step (forward + backward + Adam), batch {args.batch} at 28x28, "
        f"float32; device {args.device} ({where or platform.machine()}), {args.threads} "
        f"thread(s), torch {torch.__version__}"
    )
    print(f"  {'method':26s} {'median ms':>10s} {'best ms':>9s} {'x fixed':>8s} {'peak MiB':>9s}")
    fixed_med = statistics.median(times["fixed"])
    figures = {}
    for name, ts in times.items():
        med, best = statistics.median(ts), min(ts)
        peak = (
            float("nan")
            if args.no_memory
            else in_fresh_process(peak_of, name, args.batch, args.device, args.threads)
        )
        figures[name] = {
            "median_ms": med * 1e3,
            "best_ms": best * 1e3,
            "ratio_to_fixed": med / fixed_med,
            "peak_mib": peak,
        }
        print(
            f"  {name:26s} {med * 1e3:10.1f} {best * 1e3:9.1f} {med / fixed_med:8.3f} {peak:9.1f}"
        )
    ratio = figures["learnable (ours)"]["ratio_to_fixed"]
    print(
        f"  learnable / fixed: {ratio:.3f}x median (target <= {TARGET}x); logits at init equal "
        f"the fixed model's: {'yes' if diff < 1e-5 else 'NO'} (max diff {diff:.1e}; "
        "gamma = sqrt(2) is stored in float32)"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "figures": figures, "logit_diff": diff}, fh, indent=2)


if __name__ == "__main__":
    main()
