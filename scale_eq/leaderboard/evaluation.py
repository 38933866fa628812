"""What a run is scored on: test error, accuracy per scale or resolution, the two consistency
rates, the 45-scale grid, the equivariance error and the learned scales.

Definitions (README, "Leaderboard"):

* test error: the fraction of the test split misclassified, each image at its own scale or
  resolution;
* per-scale accuracy: test accuracy in the recipe's bins of the stored scale factor; per
  resolution: at each resolution of the file's plan;
* consistency rates (multi-resolution recipes, PROTOCOLS.md section 2): every test image
  (or the recipe's stated sample) evaluated at every resolution of the protocol; (i) the
  fraction classified correctly at all of them, (ii) the fraction given the same class at all of
  them, with the number of images as denominator;
* equivariance error on ``eq_images`` test images: Fourier models, the final features
  (``metrics.equivariance_error``, every resolution of the plan below the native one); models
  of the MNIST template (CNN, SESN), the first block's output for the image shrunk on its
  canvas by the first internal scale step (``metrics.scale_group_equivariance_error``; their
  final features are 2 x 2 maps, too coarse to rescale); other models: not measured (null).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import torch
from torch import nn

from ..fourier.models import FourierClassifier
from ..metrics import (
    _logits,
    equivariance_error,
    final_features,
    scale_group_equivariance_error,
)
from ..sesn.layers import SESConvZ2H
from ..sesn.scales import InternalScales
from .data import SplitData, adapt_input, open_split, resample_to
from .recipes import Recipe

__all__ = ["evaluate_test", "learned_scales", "predictions", "split_error"]

Autocast = Callable[[], AbstractContextManager[Any]]


@torch.no_grad()
def predictions(
    model: nn.Module, data: SplitData, model_input: str, autocast: Autocast
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(predicted class, label, plan value) of every sample of the split, in dataset order."""
    model.eval()
    pred = np.empty(len(data), np.int64)
    label = np.empty(len(data), np.int64)
    values = np.empty(len(data), np.float64)
    parts = []
    for batch in data.batches(0, model_input):
        with autocast():
            out = _logits(model(batch.x))
        parts.append(
            (batch.index, out.argmax(-1).cpu().numpy(), batch.y.cpu().numpy(), batch.values)
        )
    if data.replicas[0] > 1:  # every rank scored its share: gather them all, exactly once
        import torch.distributed as dist

        gathered: list[Any] = [None] * data.replicas[0]
        dist.all_gather_object(gathered, parts)
        parts = [part for rank_parts in gathered for part in rank_parts]
    for index, p, y, v in parts:
        pred[index], label[index], values[index] = p, y, v
    return pred, label, values


def split_error(model: nn.Module, data: SplitData, model_input: str, autocast: Autocast) -> float:
    pred, label, _ = predictions(model, data, model_input, autocast)
    return float((pred != label).mean()) if len(label) else math.nan


def _binned(correct: np.ndarray, values: np.ndarray, edges: tuple[float, ...]) -> list[dict]:
    rows = []
    for lo, hi in itertools.pairwise(edges):  # no edges (or one): no bins
        last = hi == edges[-1]
        inside = (values >= lo) & ((values <= hi) if last else (values < hi))
        n = int(inside.sum())
        rows.append(
            {
                "lo": lo,
                "hi": hi,
                "n": n,
                "accuracy": float(correct[inside].mean()) if n else None,
            }
        )
    return rows


def _per_resolution(correct: np.ndarray, values: np.ndarray) -> list[dict]:
    rows = []
    for r in np.unique(values):
        inside = values == r
        rows.append(
            {
                "resolution": int(r),
                "n": int(inside.sum()),
                "accuracy": float(correct[inside].mean()),
            }
        )
    return rows


@torch.no_grad()
def _consistency(
    model: nn.Module,
    full: SplitData,
    recipe: Recipe,
    model_input: str,
    autocast: Autocast,
) -> dict[str, Any]:
    """Both consistency rates over every resolution of the file's plan (``full``: the test
    split at the largest)."""
    resolutions = full.protocol_sizes
    n = (
        len(full)
        if recipe.consistency_images is None
        else min(recipe.consistency_images, len(full))
    )
    all_correct = all_same = 0
    bs = recipe.batch_size
    for start in range(0, n, bs):
        idx = np.arange(start, min(start + bs, n))
        batch = full.load(idx)
        preds = []
        for r in resolutions:
            x = resample_to(batch.x, r)
            with autocast():
                preds.append(_logits(model(adapt_input(x, model_input))).argmax(-1))
        p = torch.stack(preds)
        all_correct += int((p == batch.y).all(0).sum())
        all_same += int((p == p[:1]).all(0).sum())
    return {
        "resolutions": resolutions,
        "images": n,
        "correct_at_every_resolution": all_correct / n if n else None,
        "same_class_at_every_resolution": all_same / n if n else None,
        "correct_count": all_correct,
        "same_count": all_same,
    }


def _reopen(data: SplitData, **options: Any) -> SplitData:
    """The same evaluation split opened with other dataset options (``resolution=``,
    ``scales=``)."""
    ds = data.ds
    return open_split(
        ds.path, ds.split, ds.realisation, data.recipe, data.device, data.seed, **options
    )


@torch.no_grad()
def _scale_grid(
    model: nn.Module, data: SplitData, recipe: Recipe, model_input: str, autocast: Autocast
) -> dict[str, Any]:
    """Accuracy of the first ``grid_images`` test images at each scale of the recipe's grid."""
    grid = _reopen(data, scales=recipe.grid)
    base = len(grid.ds.labels)
    m = base if recipe.grid_images is None else min(recipe.grid_images, base)
    m = min(m, len(data))
    accuracy = []
    for k, scale in enumerate(recipe.grid):
        correct = 0
        for start in range(0, m, recipe.batch_size):
            idx = k * base + np.arange(start, min(start + recipe.batch_size, m))
            batch = grid.load(idx, model_input)
            with autocast():
                correct += int((_logits(model(batch.x)).argmax(-1) == batch.y).sum())
        accuracy.append({"scale": scale, "n": m, "accuracy": correct / m if m else None})
    return {"images": m, "per_scale": accuracy}


def _first_block(model: nn.Module) -> nn.Module | None:
    layers = list(getattr(model, "features", []))
    for i, layer in enumerate(layers):
        if isinstance(layer, (nn.BatchNorm2d, nn.BatchNorm3d)):
            return nn.Sequential(*layers[: i + 1])
    return None


@torch.no_grad()
def equivariance(
    model: nn.Module, data: SplitData, recipe: Recipe, model_input: str
) -> dict[str, Any]:
    """The equivariance error of the module doc, on the first ``eq_images`` samples of
    ``data`` (of a multi-resolution file: the split at its largest resolution)."""
    n = min(recipe.eq_images, len(data))
    model.eval()
    sizes = data.protocol_sizes if data.multires else []
    x = data.load(np.arange(n)).x
    if isinstance(model, FourierClassifier):
        below = [r for r in sizes if r < x.shape[-1]] or [x.shape[-1] // 2]
        report = equivariance_error(
            final_features(model), x, below, output_spectrum=True, batch_size=64, dims=x.dim() - 2
        )
        return {
            "value": report.mean,
            "what": "final features, ideal D_r",
            "images": n,
            "resolutions": below,
        }
    block = _first_block(model)
    x = adapt_input(x, model_input)
    if block is None or x.dim() != 4 or x.shape[-1] != x.shape[-2]:
        return {"value": None, "what": "not measured for this model", "images": 0}
    size, shift = round(x.shape[-1] * 4 / 7), 0
    first = block[0]
    if isinstance(first, SESConvZ2H):
        s = first.scales().detach().double()
        size = round(x.shape[-1] * float(s[0] / s[1]))
        shift = 1 if block(x[:1]).dim() == 5 else 0  # a projected block has no scale axis
    # The block pools by 2: the shrunk region must be even and start on the 2-grid.
    n_px = x.shape[-1]
    size = n_px - 4 * round((n_px - size) / 4)
    try:
        report = scale_group_equivariance_error(block, x, size, shift=shift, margin=1)
    except ValueError as exc:
        return {"value": None, "what": f"not measured: {exc}", "images": 0}
    return {
        "value": report.error,
        "what": f"first block, image shrunk {x.shape[-1]} -> {size}",
        "images": n,
        "shift": shift,
    }


def learned_scales(model: nn.Module) -> list[dict[str, Any]]:
    """Each InternalScales module's current scales (learnable ones only)."""
    return [m.describe() for m in model.modules() if isinstance(m, InternalScales) and m.learnable]


def evaluate_test(
    model: nn.Module,
    data: SplitData,
    recipe: Recipe,
    model_input: str,
    autocast: Autocast,
    lead: bool = True,
) -> dict[str, Any]:
    """Every test metric of a record (see the module doc). Data-parallel, every rank scores
    its share of the test split and the lead rank (``lead``) alone the rest."""
    pred, label, values = predictions(model, data, model_input, autocast)
    if not lead:
        return {}
    correct = pred == label
    metrics: dict[str, Any] = {
        "test_error": float(1 - correct.mean()) if len(correct) else None,
        "test_images": len(correct),
    }
    probe = data  # what the equivariance error reads
    if data.multires:
        # the split at the protocol's largest resolution: opened once, used twice
        probe = _reopen(data, resolution=data.protocol_sizes[-1])
        metrics["per_resolution"] = _per_resolution(correct, values)
        metrics["consistency"] = _consistency(model, probe, recipe, model_input, autocast)
    else:
        metrics["per_scale"] = _binned(correct, values, recipe.scale_bins)
        metrics["consistency"] = None  # defined over resolutions (multi-resolution recipes)
    if recipe.grid:
        metrics["scale_grid"] = _scale_grid(model, data, recipe, model_input, autocast)
    with autocast():
        metrics["equivariance_error"] = equivariance(model, probe, recipe, model_input)
    return metrics
