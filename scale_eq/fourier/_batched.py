"""What the batched 1D and 2D nonlinearity share: plans, their buckets and the per-resolution
instance norm computed from real Fourier coefficients.

A plan holds everything a forward pass needs for one input size (and dtype and device): the
matrices and index maps, built in float64 (:mod:`._grids`), cast, and cached by the layer (not
in its ``state_dict``). The 2D machinery is :mod:`._batched2d`, the 1D one :mod:`._batched1d`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from scale_datasets.ops.fourier import kept_modes

from ._grids import Step, angles, basis_frequency, mean_square_weights, synthesis_matrix

Activation = Callable[[Tensor], Tensor]

_CPU_CHUNK_BYTES = 2 << 20  # largest intermediate per chunk and CPU thread (see chunk_size)
_ACCEL_CHUNK_BYTES = 1 << 30  # bounds the memory of one chunk on an accelerator
_REP_BYTES = 4 << 20  # largest repeated matrix kept in a plan (see _batched2d._grouped_bmm)


def cast(tensors: dict[str, Tensor], dtype: torch.dtype, device: torch.device) -> dict:
    return {
        k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype)
        for k, v in tensors.items()
    }


@dataclass
class Bucket:
    """Consecutive steps processed together, zero-padded to the largest of their sizes."""

    first: int  # index of its first step in the plan
    count: int
    res: int  # P: padded size of the resampled maps
    modes: int  # width of the leading block of real coefficients it needs
    ext: int  # padded size of the grids the rings are read from (P, or ceil(P / p))
    slots: int  # most rings a (non-base) step of the bucket brings
    top: int  # highest ring it brings
    tensors: dict[str, Tensor] = field(default_factory=dict)

    @property
    def part_rows(self) -> list[int]:
        """Table rows of its parts: [base block], rows, columns (see ``_batched2d._extract``)."""
        rows = []
        if self.has_base and "base_rows" in self.tensors:
            half, k2 = self.tensors["base_rows"].shape[0] // 2, self.tensors["base_dft"].shape[0]
            rows.append(half * k2)
        if self.rings:
            rows += [self.rings * self.slots * 2 * (2 * self.top + 1)] * 2
        return rows

    @property
    def has_base(self) -> bool:
        return self.first == 0

    @property
    def rings(self) -> int:
        """Steps whose new rings are read as rows and columns (all but the base)."""
        return self.count - self.has_base

    def to(self, dtype: torch.dtype, device: torch.device) -> Bucket:
        """Cast, adding the repeated matrices that make some products one batched GEMM
        (see ``_batched2d._grouped_bmm``) where they are small."""
        t = cast(self.tensors, dtype, device)
        reps = {
            "syn_rep": ("syn", self.res),
            "lowpass_rep": ("lowpass", self.res),
            "ring_dft_rep": ("ring_dft", self.slots),
            "ring_cols_rep": ("ring_cols", self.ext),
        }
        for key, (src, times) in reps.items():
            if src in t and t[src].numel() * times * t[src].element_size() <= _REP_BYTES:
                t[key] = t[src].repeat_interleave(times, dim=0)
        return Bucket(
            self.first, self.count, self.res, self.modes, self.ext, self.slots, self.top, t
        )


@dataclass
class Plan:
    """Everything a forward pass needs for one input size (and dtype and device)."""

    n: int
    out_n: int
    steps: list[Step]
    modes: int  # K: width of the real coefficient block
    buckets: list[Bucket]
    tensors: dict[str, Tensor]

    @property
    def table_rows(self) -> int:
        """Rows of the per-chunk (Re, Im) table: a zero row, then every bucket's parts."""
        return 1 + sum(sum(b.part_rows) for b in self.buckets)

    def chunk_size(self, itemsize: int, device: torch.device, multiple: int) -> int:
        """Maps per chunk: the largest multiple of `multiple` whose biggest intermediate fits
        the budget. On the CPU, tensors above a few MiB are fresh page-faulting mmaps and
        leave the caches (the budget grows with the threads, which each need enough work);
        on an accelerator the caching allocator makes big chunks best."""
        per_map = max(b.count * b.res * max(b.res, b.modes) for b in self.buckets) * itemsize
        if device.type == "cpu":
            budget = _CPU_CHUNK_BYTES * max(1, torch.get_num_threads())
        else:
            budget = _ACCEL_CHUNK_BYTES
        return max(multiple, budget // per_map // multiple * multiple)


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
