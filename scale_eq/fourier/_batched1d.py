"""The batched 1D nonlinearity: a matrix product per stage and bucket on (maps, R * P).

The same method as the 2D one (:mod:`._batched2d`) along one axis: the real Fourier
coefficients of each map give every D_r x at once, the instance norm comes from Parseval, and
the new modes of each resolution are read with one product and index maps. The resolutions are
split into a few size buckets and the maps into chunks (as in 2D); autograd does the backward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from scale_datasets.ops.fourier import kept_modes

from ._batched import (
    Activation,
    Bucket,
    Plan,
    cos_sin,
    norm_affine,
    synthesis_stack,
    variance_weights,
)
from ._grids import Step, analysis_matrix, partition, signed

_CHUNK_BYTES = 4 << 20  # largest intermediate of a chunk of maps, on the CPU


def _cost_1d(res: int) -> float:
    """Rough cost per map of one resolution padded to `res`: its two products plus its passes."""
    return res * (2 * kept_modes(res) + 1) * 2 + 40.0 * res


def plan_1d(n: int, steps: list[Step], norm: bool) -> Plan:
    """Matrices and index maps of the batched 1D forward. The resolutions are split into a few
    buckets, each padded to its largest size (see :func:`~._grids.partition`): padding every
    resolution to the largest wasted half of the work on a 8..128 grid."""
    m = kept_modes(steps[-1].res)
    width = 2 * m + 1
    top = steps[-1].hi
    # an input off the grid is read up to its own modes, zero above (up-sampled to the next
    # grid point, see _grids.schedule)
    analysis = analysis_matrix(n, kept_modes(n, steps[-1].res)).T
    analysis = F.pad(analysis, (0, width - analysis.shape[1]))
    shared: dict[str, Tensor] = {"analysis_t": analysis.contiguous()}  # (n, K)
    if norm:
        shared["var_w"] = variance_weights(steps, width, 1)  # (R, K)
    sizes = [s.res for s in steps]
    buckets, first = [], 0
    for count in partition(sizes, _cost_1d, 0.05 * _cost_1d(sizes[-1]) * len(sizes), 4):
        own = steps[first : first + count]
        P = own[-1].res
        modes = 2 * kept_modes(P) + 1
        b = Bucket(first, count, P, modes, P, 0, top)
        syn = synthesis_stack(own, modes, P)  # (count, P, modes)
        b.tensors["syn_t"] = syn.reshape(count * P, modes).T.contiguous()  # (modes, count P)
        # block columns: frequency k of the grid that introduces it (cos k -> k, sin k -> top + k)
        ext = torch.zeros(count, P, 2 * top + 1, dtype=torch.float64)
        for j, s in enumerate(own):
            k = torch.arange(s.lo, s.hi + 1)
            cs = cos_sin(s.grid, k, P)  # (k, cos / sin, P), zero below P beyond the grid
            ext[j, :, k] = cs[:, 0].T
            ext[j, :, top + k[k > 0]] = cs[k > 0, 1].T
        b.tensors["ext"] = ext.reshape(count * P, 2 * top + 1)
        buckets.append(b)
        first += count
    zero = 2 * top + 1  # index of an appended zero column
    re_idx = torch.full((n,), zero, dtype=torch.long)
    im_idx = torch.full((n,), zero, dtype=torch.long)
    im_sign = torch.zeros(n, dtype=torch.float64)
    for i in range(n):
        k = signed(i, n)
        if abs(k) > top:
            continue
        re_idx[i] = abs(k)
        if k:
            im_idx[i], im_sign[i] = top + abs(k), -_sign(k)
    shared["re_idx"], shared["im_idx"], shared["im_sign"] = re_idx, im_idx, im_sign
    return Plan(n, n, steps, width, buckets, shared)


def _sign(k: int) -> float:
    return float((k > 0) - (k < 0))


def forward_1d(
    spectrum: Tensor,
    plan: Plan,
    activation: Activation,
    norm: tuple[Tensor, Tensor, float] | None,
) -> Tensor:
    """The 1D layer on (B, C, N) spectra -> (B, C, N) spectra. ``norm`` is the (weight, bias)
    of the plan's resolutions, each (R, C), and eps."""
    t = plan.tensors
    B, C, n = spectrum.shape
    x = torch.fft.ifft(spectrum, norm="forward").real.reshape(B * C, n)
    coeffs = x @ t["analysis_t"]  # (maps, K) real Fourier coefficients
    scale = offset = None
    if norm is not None:
        var = t["var_w"] @ coeffs.T.square()  # (R, maps), Parseval
        scale, offset = norm_affine(var, coeffs[:, 0], *norm)
        scale, offset = scale.T, offset.T  # (maps, R)
    # chunks of maps keep each bucket's (maps, R P) intermediates in the caches
    widest = max(b.count * b.res for b in plan.buckets) * x.element_size()
    size = max(C, _CHUNK_BYTES // widest // C * C) if x.device.type == "cpu" else B * C
    raws = []
    for i in range(0, B * C, size):
        raw = None
        for b in plan.buckets:
            y = (coeffs[i : i + size, : b.modes] @ b.tensors["syn_t"]).view(-1, b.count, b.res)
            if scale is not None and offset is not None:  # D_r x for the bucket's r
                sl = slice(b.first, b.first + b.count)
                y = torch.addcmul(offset[i : i + size, sl, None], y, scale[i : i + size, sl, None])
            y = activation(y).reshape(-1, b.count * b.res)
            part = y @ b.tensors["ext"]  # (maps, 2 top + 1): cos / sin of the new modes
            raw = part if raw is None else raw + part
        raws.append(raw)
    raw = F.pad(torch.cat(raws) if len(raws) > 1 else raws[0], (0, 1))  # a zero column
    re = raw.index_select(-1, t["re_idx"])
    im = raw.index_select(-1, t["im_idx"]) * t["im_sign"]
    return torch.complex(re, im).reshape(B, C, n)
