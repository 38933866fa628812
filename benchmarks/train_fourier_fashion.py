"""Train `fourier_mnist` briefly on Fashion-MNIST at random resolutions 8..28 and score it.

Each training batch is down-scaled on the fly to one resolution r ~ U{8..28} with the ideal
operator D_r (batches hold one resolution each, as the Fourier protocol requires); the loss is
the per-scale consistency loss of PROTOCOLS.md 6.2. A held-out part of the test set is then
scored at every resolution: accuracy per resolution, scale consistency (same prediction at every
resolution) and the scale-equivariance error of the final features and of the logits.

    python benchmarks/train_fourier_fashion.py                  # short run on the CPU
    python benchmarks/train_fourier_fashion.py --recipe full --device cuda   # PROTOCOLS.md 7

The data are Debian's Fashion-MNIST (`apt-get install dataset-fashion-mnist`); nothing is
downloaded.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import scale_eq
from scale_datasets.ops.fourier import resample
from scale_datasets.sources import load_mnist_like
from scale_eq.fourier.head import consistency_loss

RESOLUTIONS = tuple(range(8, 29))


def _tensors(images: np.ndarray, labels: np.ndarray, mean: float, std: float):
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return (x - mean) / std, torch.from_numpy(labels.astype(np.int64))


@torch.no_grad()
def _logit_consistency_error(model: torch.nn.Module, x: torch.Tensor) -> float:
    """max over r of ||logits(D_r x) - head entry r of logits(x)|| / ||head entry r||."""
    full = model(x, return_all=True)
    worst = 0.0
    for j, r in enumerate(full.resolutions):
        if r >= x.shape[-1]:
            continue
        own = model(resample(x, r)).double()
        entry = full.per_scale_logits[:, j].double()
        worst = max(worst, float((own - entry).norm() / entry.norm()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--recipe",
        choices=("short", "full"),
        default="short",
        help="short: a few epochs on a subset; full: PROTOCOLS.md 7 (60 epochs)",
    )
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs")
    parser.add_argument("--train-size", type=int, help="training images (default: recipe's)")
    parser.add_argument("--test-size", type=int, default=2000, help="held-out images scored")
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    full = args.recipe == "full"
    epochs = args.epochs or (60 if full else 3)
    train_size = args.train_size or (60_000 if full else 6_000)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = torch.device(args.device)

    source = load_mnist_like("fashion-mnist", download=False)
    train_images = source.images[: source.n_train]
    mean, std = float(train_images.mean() / 255), float(train_images.std() / 255)
    train_idx = rng.permutation(source.n_train)[:train_size]
    x_train, y_train = _tensors(train_images[train_idx], source.labels[train_idx], mean, std)
    held_out = source.n_train + rng.permutation(source.n_test)[: args.test_size]
    x_test, y_test = _tensors(source.images[held_out], source.labels[held_out], mean, std)

    model = scale_eq.create_model("fourier_mnist", width=args.width).to(device)
    params = sum(p.numel() for p in model.parameters())
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=3e-2)
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, step_size=20, gamma=0.1)
    print(
        f"fourier_mnist (width {args.width}, {params:,} real parameters) on {device}; "
        f"{train_size} train / {args.test_size} held-out Fashion-MNIST images, "
        f"{epochs} epochs, batch {args.batch_size}, resolutions {RESOLUTIONS[0]}..{RESOLUTIONS[-1]}"
    )
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(train_size))
        total, seen = 0.0, 0
        for start in range(0, train_size, args.batch_size):
            batch = order[start : start + args.batch_size]
            r = int(rng.integers(RESOLUTIONS[0], RESOLUTIONS[-1] + 1))
            xb = x_train[batch].to(device)
            xb = xb if r == xb.shape[-1] else resample(xb, r)
            out = model(xb, return_all=True)
            loss = consistency_loss(out.per_scale_logits, y_train[batch].to(device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
            seen += len(batch)
        schedule.step()
        print(
            f"epoch {epoch + 1:3d}: loss {total / seen:.4f} ({time.perf_counter() - started:.0f} s)"
        )

    model.eval()
    trained = time.perf_counter() - started

    def step(what: str) -> None:
        print(f"scoring: {what} ({time.perf_counter() - started:.0f} s)", flush=True)

    step(f"accuracy of {len(x_test)} held-out images at each of {len(RESOLUTIONS)} resolutions")
    accuracy = scale_eq.accuracy_per_resolution(
        model, (x_test, y_test), RESOLUTIONS, batch_size=256
    )
    step("scale consistency (every image at every resolution)")
    consistency = scale_eq.scale_consistency(model, x_test, RESOLUTIONS, batch_size=256)
    sample = x_test[:256].to(device).double()
    model64 = model.double()
    step(f"equivariance error of the final features in float64 ({len(sample)} images)")
    features = scale_eq.equivariance_error(
        scale_eq.final_features(model64), sample, RESOLUTIONS[:-1], output_spectrum=True
    )
    step("logit consistency")
    logits = _logit_consistency_error(model64, sample)
    print(f"training took {trained:.0f} s, scoring {time.perf_counter() - started - trained:.0f} s")
    print("\nheld-out accuracy per resolution:")
    print("  " + "  ".join(f"{r}:{a:.3f}" for r, a in accuracy.items()))
    print(f"mean accuracy {np.mean(list(accuracy.values())):.4f}, at 28x28 {accuracy[28]:.4f}")
    print(f"scale consistency (same class at all 21 resolutions): {consistency:.4f}")
    print(
        f"equivariance error of the final features (float64, {len(sample)} images, "
        f"r = 8..27 vs 28): {features.mean:.2e}"
    )
    print(
        f"logits of D_r(x) vs the head's entry at r for x (max relative difference): {logits:.2e}"
    )
    figures = {
        "epochs": epochs,
        "train_size": train_size,
        "test_size": args.test_size,
        "parameters": params,
        "accuracy_per_resolution": accuracy,
        "scale_consistency": consistency,
        "feature_equivariance_error": features.mean,
        "logit_consistency_error": logits,
        "seconds": time.perf_counter() - started,
        "device": str(device),
    }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
