"""Rendering batches of base samples with a file's render op, on the CPU or on a device.

Shared by `ScaleDataset` (which renders each batch it is asked for) and by training loops that
render on their own device (`ScaleDataset(render_on="device")` hands over base samples and plan
values; `ScaleDataset.render_batch` renders them there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .ops.pixels import to_unit_float
from .ops.render import RenderOp


def as_float_samples(stored: torch.Tensor) -> torch.Tensor:
    """Stored samples as floats: uint8 images as float32 in [0, 1] with a channel axis
    (B, C, H, W); floating pools (signals, (B, C, L), values as the source has them) as they
    are."""
    if stored.is_floating_point():
        return stored
    base = to_unit_float(stored)
    return base.unsqueeze(1) if base.ndim == 3 else base


def render_values_wise(
    op: RenderOp, params: dict[str, Any], stored: torch.Tensor, values: np.ndarray
) -> torch.Tensor:
    """Samples from uint8 base samples, one value each (uint8 images, or float32 (B, C, H, W)
    for ops that render floats), on the samples' device: with the op's torch renderer when
    there is one, else with its numpy renderer."""
    if stored.device.type != "cpu" and op.torch_fn is not None:
        return op.torch_fn(stored, torch.from_numpy(values).to(stored.device), **params)
    return torch.from_numpy(op.fn(stored.cpu().numpy(), values, **params)).to(stored.device)


def render_samples(
    op: RenderOp,
    params: dict[str, Any],
    stored: torch.Tensor,
    values: np.ndarray,
    base_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """Each item's float32 sample (C, H, W) from its uint8 base sample and plan value: one op
    call for value-wise ops, one per distinct value for per-value ops (after `base_transform`
    on each base sample)."""
    if not op.by_value:
        return list(as_float_samples(render_values_wise(op, params, stored, values)).unbind(0))
    base = as_float_samples(stored)
    if base_transform is not None:
        items = [base_transform(x) for x in base.unbind(0)]
    out: list[torch.Tensor] = [base[0]] * len(values)
    for value in np.unique(values):
        where = np.flatnonzero(values == value)
        if base_transform is not None:
            batch = torch.stack([items[i] for i in where])
        elif len(where) == len(values):
            batch = base  # the usual case: one resolution per batch
        else:
            batch = base.index_select(0, torch.from_numpy(where).to(base.device))
        for i, sample in zip(where, op.fn(batch, value, **params).unbind(0), strict=True):
            out[i] = sample
    return out
