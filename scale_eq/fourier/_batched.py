"""What the batched 1D and 2D nonlinearity share: the per-resolution matrices their plans are
built from, the instance norm computed from real Fourier coefficients, and the casting of plans.

A plan holds everything a forward pass needs for one input size (and dtype and device): the
matrices and index maps, built in float64 (:mod:`._grids`), cast, and cached by the layer (not
in its ``state_dict``). Plans are typed records, one per dimension: :class:`._batched1d.Plan1d`
and :class:`._batched2d.Plan2d`, each with its size buckets (consecutive resolutions processed
together, zero-padded to the largest of their sizes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

from scale_datasets.ops.fourier import kept_modes

from ._grids import Step, angles, basis_frequency, mean_square_weights, synthesis_matrix

Activation = Callable[[Tensor], Tensor]
R = TypeVar("R")


def cast_record(record: R, dtype: torch.dtype, device: torch.device) -> R:
    """A copy of a frozen plan record (:class:`._batched1d.Plan1d`, :class:`._batched2d.Plan2d`
    and their buckets) with every tensor field on `device`, the floating ones in `dtype` (index
    maps keep their integer or bool dtype); ``None`` fields stay ``None``."""
    moved = {}
    for f in fields(record):  # type: ignore[arg-type]
        value = getattr(record, f.name)
        if isinstance(value, Tensor):
            moved[f.name] = value.to(
                device=device, dtype=dtype if value.is_floating_point() else value.dtype
            )
    return replace(record, **moved)  # type: ignore[type-var]


def variance_weights(steps: list[Step], width: int, dims: int) -> Tensor:
    """(R, width^dims): Var(D_r x) = sum over its kept non-constant real coefficients c of
    c^2 * (mean square of c's basis function): Parseval's identity on the r grid."""
    w, f = mean_square_weights(width), basis_frequency(width)
    if dims == 2:
        w = (w[:, None] * w[None, :]).reshape(-1)
        f = torch.maximum(f[:, None], f[None, :]).reshape(-1)
    limits = torch.tensor([kept_modes(s.res) for s in steps])
    return w[None, :] * ((f[None, :] >= 1) & (f[None, :] <= limits[:, None]))


def synthesis_stack(steps: list[Step], width: int, rows: int) -> Tensor:
    """(R, rows, width): B_r, the real basis with `width` columns sampled on each step's r
    grid, zero rows below r."""
    return torch.stack(
        [
            F.pad(synthesis_matrix(s.res, kept_modes(s.res), width), (0, 0, 0, rows - s.res))
            for s in steps
        ]
    )


def cos_sin(g: int, ks: Tensor, width: int) -> Tensor:
    """(len(ks), 2, width): cos and sin of 2 pi k t / g, divided by g, for t < g (0 beyond)."""
    ang = angles(ks, torch.arange(g), g)
    out = torch.zeros(len(ks), 2, width, dtype=torch.float64)
    out[:, 0, :g], out[:, 1, :g] = ang.cos() / g, ang.sin() / g
    return out


def norm_affine(
    var: Tensor, mean: Tensor, weight: Tensor, bias: Tensor, eps: float
) -> tuple[Tensor, Tensor]:
    """Per-resolution (scale, offset), each (R, maps): norm_r(y) = scale * y + offset.

    ``var`` (R, maps) and ``mean`` (maps,) are the population variance and mean of each
    D_r x on its r grid (maps run over whole samples, channel fastest), so this is what
    ``nn.InstanceNorm{1,2}d`` computes on the r-sized map, without visiting it.
    """
    R, C = weight.shape
    scale = weight[:, None, :] * torch.rsqrt(var.view(R, -1, C) + eps)  # (R, samples, C)
    offset = bias[:, None, :] - mean.view(1, -1, C) * scale
    return scale.view(R, -1), offset.view(R, -1)
