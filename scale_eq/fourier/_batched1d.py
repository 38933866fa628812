"""The batched 1D nonlinearity: one matrix product per stage on (maps, R * P).

The same method as the 2D one (:mod:`._batched2d`) along one axis: the real Fourier
coefficients of each map give every D_r x at once, the instance norm comes from Parseval, and
the new modes of each resolution are read with one product and index maps. The 1D work is
small enough not to need buckets or chunks, and autograd does the backward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._batched import (
    Activation,
    Bucket,
    Plan,
    cos_sin,
    norm_affine,
    synthesis_stack,
    variance_weights,
)
from ._grids import Step, analysis_matrix, kept, signed


def plan_1d(n: int, steps: list[Step], norm: bool) -> Plan:
    """Matrices and index maps of the batched 1D forward (one bucket: 1D work is small)."""
    R, P = len(steps), steps[-1].res
    m = kept(P)
    width = 2 * m + 1
    top = steps[-1].hi
    shared: dict[str, Tensor] = {"analysis_t": analysis_matrix(n, m).T.contiguous()}  # (n, K)
    if norm:
        shared["var_w"] = variance_weights(steps, width, 1)  # (R, K)
    syn = synthesis_stack(steps, width, P)
    shared["syn_t"] = syn.reshape(R * P, width).T.contiguous()  # (K, R P)
    # block columns: frequency k of the grid that introduces it (cos k -> k, sin k -> top + k)
    ext = torch.zeros(R, P, 2 * top + 1, dtype=torch.float64)
    for j, s in enumerate(steps):
        k = torch.arange(s.lo, s.hi + 1)
        cs = cos_sin(s.grid, k, P)  # (k, cos / sin, P), zero below P beyond the grid
        ext[j, :, k] = cs[:, 0].T
        ext[j, :, top + k[k > 0]] = cs[k > 0, 1].T
    shared["ext"] = ext.reshape(R * P, 2 * top + 1)
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
    bucket = Bucket(0, R, P, width, P, 0, top)
    return Plan(n, n, steps, width, [bucket], shared)


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
    R, P = len(plan.steps), plan.buckets[0].res
    x = torch.fft.ifft(spectrum, norm="forward").real.reshape(B * C, n)
    coeffs = x @ t["analysis_t"]  # (maps, K) real Fourier coefficients
    y = (coeffs @ t["syn_t"]).view(B * C, R, P)  # D_r x for every r
    if norm is not None:
        var = t["var_w"] @ coeffs.T.square()  # (R, maps), Parseval
        scale, offset = norm_affine(var, coeffs[:, 0], *norm)
        y = torch.addcmul(offset.T[..., None], y, scale.T[..., None])
    y = activation(y).reshape(B * C, R * P)
    raw = y @ t["ext"]  # (maps, 2 top + 1): cos / sin coefficients of the new modes
    raw = F.pad(raw, (0, 1))  # a zero column for the modes above the top ring
    re = raw.index_select(-1, t["re_idx"])
    im = raw.index_select(-1, t["im_idx"]) * t["im_sign"]
    return torch.complex(re, im).reshape(B, C, n)
