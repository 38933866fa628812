"""The batched 1D nonlinearity: a matrix product per stage and bucket on (maps, R * P).

The same method as the 2D one (:mod:`._batched2d`) along one axis: the real Fourier
coefficients of each map give every D_r x at once, the instance norm comes from Parseval, and
the new modes of each resolution are read with one product and index maps. The resolutions are
split into a few size buckets and the maps into chunks (as in 2D); autograd does the backward.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from scale_datasets.ops.fourier import kept_modes

from ._batched import (
    Activation,
    cast_record,
    cos_sin,
    norm_affine,
    synthesis_stack,
    variance_weights,
)
from ._grids import Step, analysis_matrix, partition, signed

_CHUNK_BYTES = 4 << 20  # largest intermediate of a chunk of maps, on the CPU


@dataclass(frozen=True)
class Bucket1d:
    """Consecutive steps processed together, zero-padded to the largest of their sizes."""

    first_step: int  # index of its first step in the schedule
    step_count: int
    padded_res: int  # P
    synthesis_t: Tensor  # (width, steps P): B_r^T of each step, zero columns below P
    # (steps P, 2 top + 1): the cos and sin of each step's new modes on its grid, as columns
    # [cos 0..top | sin 1..top], zero where another step brings the mode
    new_modes: Tensor

    @property
    def coef_width(self) -> int:
        """Width of the leading block of real coefficients it needs."""
        return 2 * kept_modes(self.padded_res) + 1


@dataclass(frozen=True)
class Plan1d:
    """Everything the 1D forward needs for one input size (and dtype and device)."""

    n: int
    steps: tuple[Step, ...]
    analysis_t: Tensor  # (n, K): real coefficients of a map (zero above an off-grid n's modes)
    buckets: tuple[Bucket1d, ...]
    # where each output mode's (Re, Im) is read in the (maps, 2 top + 2) table of cos / sin
    # values (the last column is zero), and the sign of Im
    real_index: Tensor
    imag_index: Tensor
    imag_sign: Tensor
    variance_weights: Tensor | None = None  # (steps, K), with a norm (Parseval)

    def to(self, dtype: torch.dtype, device: torch.device) -> Plan1d:
        buckets = tuple(cast_record(b, dtype, device) for b in self.buckets)
        return replace(cast_record(self, dtype, device), buckets=buckets)


def _cost_1d(res: int) -> float:
    """Rough cost per map of one resolution padded to `res`: its two products plus its passes."""
    return res * (2 * kept_modes(res) + 1) * 2 + 40.0 * res


def plan_1d(n: int, steps: list[Step], norm: bool) -> Plan1d:
    """Matrices and index maps of the batched 1D forward, in float64 (cast with ``.to``). The
    resolutions are split into a few buckets, each padded to its largest size (see
    :func:`~._grids.partition`): padding every resolution to the largest wasted half of the
    work on a 8..128 grid."""
    width = 2 * kept_modes(steps[-1].res) + 1
    top = steps[-1].hi
    # an input off the grid is read up to its own modes, zero above (up-sampled to the next
    # grid point, see _grids.schedule)
    analysis = analysis_matrix(n, kept_modes(n, steps[-1].res)).T
    analysis = F.pad(analysis, (0, width - analysis.shape[1]))
    sizes = [s.res for s in steps]
    buckets, first = [], 0
    for count in partition(sizes, _cost_1d, 0.05 * _cost_1d(sizes[-1]) * len(sizes), 4):
        own = steps[first : first + count]
        padded = own[-1].res
        bucket_width = 2 * kept_modes(padded) + 1
        syn = synthesis_stack(own, bucket_width, padded)  # (count, P, width)
        new_modes = torch.zeros(count, padded, 2 * top + 1, dtype=torch.float64)
        for j, s in enumerate(own):
            k = torch.arange(s.lo, s.hi + 1)
            cs = cos_sin(s.grid, k, padded)  # (k, cos / sin, P), zero below P beyond the grid
            new_modes[j, :, k] = cs[:, 0].T
            new_modes[j, :, top + k[k > 0]] = cs[k > 0, 1].T
        buckets.append(
            Bucket1d(
                first_step=first,
                step_count=count,
                padded_res=padded,
                synthesis_t=syn.reshape(count * padded, bucket_width).T.contiguous(),
                new_modes=new_modes.reshape(count * padded, 2 * top + 1),
            )
        )
        first += count
    zero = 2 * top + 1  # index of an appended zero column
    real_index = torch.full((n,), zero, dtype=torch.long)
    imag_index = torch.full((n,), zero, dtype=torch.long)
    imag_sign = torch.zeros(n, dtype=torch.float64)
    for i in range(n):
        k = signed(i, n)
        if abs(k) > top:
            continue
        real_index[i] = abs(k)
        if k:
            imag_index[i], imag_sign[i] = top + abs(k), -_sign(k)
    return Plan1d(
        n=n,
        steps=tuple(steps),
        analysis_t=analysis.contiguous(),
        buckets=tuple(buckets),
        real_index=real_index,
        imag_index=imag_index,
        imag_sign=imag_sign,
        variance_weights=variance_weights(steps, width, 1) if norm else None,
    )


def _sign(k: int) -> float:
    return float((k > 0) - (k < 0))


def forward_1d(
    spectrum: Tensor,
    plan: Plan1d,
    activation: Activation,
    norm: tuple[Tensor, Tensor, float] | None,
) -> Tensor:
    """The 1D layer on (B, C, N) spectra -> (B, C, N) spectra. ``norm`` is the (weight, bias)
    of the plan's resolutions, each (steps, C), and eps."""
    B, C, n = spectrum.shape
    x = torch.fft.ifft(spectrum, norm="forward").real.reshape(B * C, n)
    coeffs = x @ plan.analysis_t  # (maps, K) real Fourier coefficients
    scale = offset = None
    if norm is not None:
        assert plan.variance_weights is not None
        var = plan.variance_weights @ coeffs.T.square()  # (steps, maps), Parseval
        scale, offset = norm_affine(var, coeffs[:, 0], *norm)
        scale, offset = scale.T, offset.T  # (maps, steps)
    # chunks of maps keep each bucket's (maps, steps P) intermediates in the caches
    widest = max(b.step_count * b.padded_res for b in plan.buckets) * x.element_size()
    size = max(C, _CHUNK_BYTES // widest // C * C) if x.device.type == "cpu" else B * C
    tables = []
    for i in range(0, B * C, size):
        table = None
        for bucket in plan.buckets:
            steps, padded = bucket.step_count, bucket.padded_res
            lead = coeffs[i : i + size, : bucket.coef_width]
            y = (lead @ bucket.synthesis_t).view(-1, steps, padded)  # D_r x for the bucket's r
            if scale is not None and offset is not None:
                own = slice(bucket.first_step, bucket.first_step + steps)
                y = torch.addcmul(
                    offset[i : i + size, own, None], y, scale[i : i + size, own, None]
                )
            y = activation(y).reshape(-1, steps * padded)
            part = y @ bucket.new_modes  # (maps, 2 top + 1): cos / sin of the new modes
            table = part if table is None else table + part
        tables.append(table)
    table = F.pad(torch.cat(tables) if len(tables) > 1 else tables[0], (0, 1))  # a zero column
    re = table.index_select(-1, plan.real_index)
    im = table.index_select(-1, plan.imag_index) * plan.imag_sign
    return torch.complex(re, im).reshape(B, C, n)
