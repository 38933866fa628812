"""Train `sesn_mnist_isr` and `cnn_mnist` briefly on an MNIST-Scale realisation of Fashion-MNIST.

Builds realisation 0 of `mnist-scale` from Debian's Fashion-MNIST with our builder (or uses
``--file``), then trains each model with the MNIST-Scale recipe of PROTOCOLS.md 7 (Adam lr 0.01,
batch 128; the learnable scales in their own parameter group, ``--scale-lr``, same schedule) on
the first ``--train-size`` training images, and prints per epoch the test error on the first
``--test-size`` test images and, for the SESN model, every layer's learned sigma_basis and ISR.
At the end: the scale-equivariance error of each model's first layer and first block on test
images (the image shrunk on its canvas by the first internal scale step, 28 -> 16 at init; see
``equivariance_errors``).

    python benchmarks/train_sesn_fashion.py                       # short run on the CPU
    python benchmarks/train_sesn_fashion.py --recipe full --device cuda   # 60 epochs, all data

Nothing is downloaded (`apt-get install dataset-fashion-mnist`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

import scale_datasets as sd
import scale_eq
from scale_eq.sesn import InternalScales, SESConvZ2H


def load_split(path: Path, split: str, size: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``size`` images and labels of a split as two tensors (one batch)."""
    ds = sd.MNISTScale(path, split=split, realisation=0)
    n = len(ds) if size is None else min(size, len(ds))
    return next(iter(DataLoader(Subset(ds, range(n)), batch_size=n)))


def test_error(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Error on the test images at their own size (eval mode, on the model's device)."""
    size = x.shape[-1]
    return 1.0 - scale_eq.accuracy_per_resolution(model, (x, y), [size], batch_size=512)[size]


def scales_line(described: list[dict]) -> str:
    """One log line from every layer's ``InternalScales.describe()``."""
    return "; ".join(
        f"L{i + 1} sigma_basis {d['sigma_basis']:.3f} ISR {d['isr']:.3f} K {d['kernel_size']}"
        for i, d in enumerate(described)
    )


def equivariance_errors(model: torch.nn.Module, x: torch.Tensor, device: str) -> dict:
    """Equivariance errors when the image shrinks by the model's first internal scale step.

    SESN: the 28 x 28 image shrinks to round(28 sigma_0 / sigma_1) (16 for the init scales 2,
    3.46); the CNN gets the same 28 -> 16. "first layer": its raw output, SESN compared one
    scale up, the CNN unshifted. "block 1": the first block's output (projected, ReLU,
    max-pool 2, BatchNorm: 14 x 14 maps, no scale axis), unshifted. (The final features are
    2 x 2 maps, too coarse to rescale.)
    """
    model = model.to(device).double().eval()
    layers = list(model.features)
    first = layers[0]
    block = torch.nn.Sequential(
        *layers[: 1 + next(i for i, m in enumerate(layers) if isinstance(m, torch.nn.BatchNorm2d))]
    )
    size, shift = 16, 0
    if isinstance(first, SESConvZ2H):
        s = first.scales().detach().double()
        size, shift = round(28 * float(s[0] / s[1])), 1
    size -= size % 2  # the pooled block needs the region on its 2-grid
    x = x.double().to(device)
    errors = {
        "first_layer": scale_eq.scale_group_equivariance_error(
            first, x, size, shift=shift, margin=2
        ).error,
        "block_1": scale_eq.scale_group_equivariance_error(block, x, size, shift=0, margin=1).error,
        "size": size,
    }
    model.float()
    return errors


def train(name: str, args: argparse.Namespace, data: dict) -> dict:
    torch.manual_seed(args.seed)
    model = scale_eq.create_model(name).to(args.device)
    groups = scale_eq.parameter_groups(model, args.lr, scale_lr=args.scale_lr)
    opt = torch.optim.Adam(groups)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, args.milestones, gamma=0.1)
    x, y = data["train"]
    g = torch.Generator().manual_seed(args.seed)
    history = []
    started = time.perf_counter()
    print(f"\n{name}: {sum(p.numel() for p in model.parameters()):,} parameters")
    scales = [m for m in model.modules() if isinstance(m, InternalScales)]
    if scales:
        print(f"  init      {scales_line([s.describe() for s in scales])}")
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x), generator=g)
        for start in range(0, len(x), args.batch_size):
            idx = order[start : start + args.batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[idx].to(args.device)), y[idx].to(args.device))
            loss.backward()
            opt.step()
        sched.step()
        err = test_error(model, *data["test"])
        row = {"epoch": epoch + 1, "test_error": err, "seconds": time.perf_counter() - started}
        line = f"  epoch {epoch + 1:2d}: test error {100 * err:5.2f}%"
        if scales:
            row["scales"] = [s.describe() for s in scales]
            line += f"  {scales_line(row['scales'])}"
        print(line + f"  ({row['seconds']:.0f} s)")
        history.append(row)
    eq = equivariance_errors(model, data["test"][0][: args.eq_images], args.device)
    print(
        f"  scale-equivariance error, image shrunk 28 -> {eq['size']}: first layer "
        f"{eq['first_layer']:.4f}, block 1 output {eq['block_1']:.4f}"
    )
    return {"history": history, "equivariance_error": eq}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=("short", "full"), default="short")
    parser.add_argument("--file", type=Path, help="an mnist-scale file (default: build one)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--test-size", type=int)
    parser.add_argument("--models", nargs="+", default=["sesn_mnist_isr", "cnn_mnist"])
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--scale-lr", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--eq-images", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    full = args.recipe == "full"
    args.epochs = args.epochs or (60 if full else 3)
    args.train_size = args.train_size or (None if full else 2000)
    args.test_size = args.test_size or (None if full else 2000)
    args.milestones = [20, 40] if full else [max(args.epochs - 1, 1)]

    with tempfile.TemporaryDirectory() as tmp:
        path = args.file
        if path is None:
            t0 = time.perf_counter()
            path = sd.build(
                "mnist-scale",
                Path(tmp) / "ms.h5",
                source="fashion-mnist",
                download=False,
                realisations=1,
            )
            print(
                f"built {path.name} (realisation 0, Fashion-MNIST) "
                f"in {time.perf_counter() - t0:.1f} s"
            )
        data = {
            "train": load_split(path, "train", args.train_size),
            "test": load_split(path, "test", args.test_size),
        }
    print(
        f"{len(data['train'][0])} train / {len(data['test'][0])} test images, {args.epochs} "
        f"epochs, batch {args.batch_size}, Adam lr {args.lr} (scales {args.scale_lr}), "
        f"device {args.device}"
    )
    results = {name: train(name, args, data) for name in args.models}
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=2
            )
        )


if __name__ == "__main__":
    main()
