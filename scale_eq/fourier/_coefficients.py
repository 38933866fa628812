"""The real Fourier coefficients of maps, read straight off their mode-major spectra.

The batched nonlinearity and the head work on the coefficients ``Xc = C x C^T`` of each real map
x on the basis [1, cos 1, sin 1, cos 2, sin 2, ...] (``_grids.analysis_matrix``, frequency
ordered, so a smaller band is a leading block). With the spectra mode-major, (N N, maps), they
are a gather of the low modes and a few elementwise passes, maps innermost: no FFT.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = [
    "ReadCoefficients",
    "coefficient_reader",
    "real_coefficients",
    "real_coefficients_backward",
]


def coefficient_reader(n: int, m: int) -> Tensor:
    """Flat positions ``p n + q`` of the (2m + 1)^2 modes the real coefficients of an n x n
    spectrum need, each axis in the order [0, 1, ..., m, -1, ..., -m] (see
    :func:`real_coefficients`)."""
    k = torch.tensor([0, *range(1, m + 1), *range(n - 1, n - m - 1, -1)])
    return (k[:, None] * n + k[None, :]).reshape(-1)


def _width(idx: Tensor) -> int:
    return math.isqrt(idx.numel())


def real_coefficients(spectrum: Tensor, idx: Tensor) -> Tensor:
    """Real Fourier coefficients Xc = C x C^T of x = Re ifft2(spectrum), laid out (K, K, maps),
    read off the (N N, maps) spectrum without an FFT; ``idx`` from :func:`coefficient_reader`.

    A row of C (``analysis_matrix``) is the constant, a cos or a sin of one frequency k, so along
    one axis the coefficients of ``Re ifft(X)`` are read off the modes k and -k of X: the
    constant is X[0], cos k is ``X[k] + X[-k]``, sin k is ``i (X[k] - X[-k])``, taking the real
    part at the end (the weights are exactly 0, +-1 and +-i). In 2D: that combination along the
    first axis, then along the second, then Re. Only the (2m + 1)^2 modes |k| <= m are read
    (one gather), and every step is an elementwise pass with the maps innermost.
    """
    K, M, m = _width(idx), _width(idx) // 2, spectrum.shape[-1]
    x = torch.view_as_real(spectrum).index_select(0, idx)  # (K K, maps, 2)
    x = x.view(K, K, m, 2)  # axes in the order [0, 1..M, -1..-M]
    # first axis: rows [const, cos 1, sin 1, ...] as complex (re, im)
    p = x.new_empty(K, K, m, 2)
    pos, neg = x[1 : M + 1], x[M + 1 :]
    p[0] = x[0]
    torch.add(pos, neg, out=p[1::2])
    torch.sub(neg[..., 1], pos[..., 1], out=p[2::2, ..., 0])  # Re(i D) = -Im D
    torch.sub(pos[..., 0], neg[..., 0], out=p[2::2, ..., 1])  # Im(i D) = Re D
    # second axis, keeping Re only
    out = x.new_empty(K, K, m)
    pos, neg = p[:, 1 : M + 1], p[:, M + 1 :]
    out[:, 0] = p[:, 0, :, 0]
    torch.add(pos[..., 0], neg[..., 0], out=out[:, 1::2])
    torch.sub(neg[..., 1], pos[..., 1], out=out[:, 2::2])
    return out


def real_coefficients_backward(g: Tensor, idx: Tensor, out: Tensor) -> None:
    """The transpose of :func:`real_coefficients`, written into the ``idx`` rows of `out`
    (N N, maps) complex (the gradient w.r.t. Re and Im of each mode, as PyTorch's complex
    gradients are); the other rows get no gradient, and the caller zeroes them."""
    K, M, m = _width(idx), _width(idx) // 2, g.shape[-1]
    # second axis: d p (K, K, maps, 2)
    g_p = g.new_empty(K, K, m, 2)
    g_p[:, 0, :, 0] = g[:, 0]
    g_p[:, 0, :, 1] = 0.0
    gc, gs = g[:, 1::2], g[:, 2::2]
    g_p[:, 1 : M + 1, :, 0] = gc
    torch.neg(gs, out=g_p[:, 1 : M + 1, :, 1])
    g_p[:, M + 1 :, :, 0] = gc
    g_p[:, M + 1 :, :, 1] = gs
    # first axis: d x (K, K, maps, 2) in the reader's order
    g_x = g.new_empty(K, K, m, 2)
    g_x[0] = g_p[0]
    g_s, g_d = g_p[1::2], g_p[2::2]  # the cos rows (X[k] + X[-k]) and sin rows (i D)
    torch.add(g_s[..., 0], g_d[..., 1], out=g_x[1 : M + 1, ..., 0])
    torch.sub(g_s[..., 1], g_d[..., 0], out=g_x[1 : M + 1, ..., 1])
    torch.sub(g_s[..., 0], g_d[..., 1], out=g_x[M + 1 :, ..., 0])
    torch.add(g_s[..., 1], g_d[..., 0], out=g_x[M + 1 :, ..., 1])
    torch.view_as_real(out).index_copy_(0, idx, g_x.view(K * K, m, 2))


class ReadCoefficients(torch.autograd.Function):
    """:func:`real_coefficients` for autograd, with its transpose as the backward:
    ``ReadCoefficients.apply(spectrum, idx)``."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, spectrum: Tensor, idx: Tensor) -> Tensor:  # type: ignore[override]
        ctx.idx, ctx.shape, ctx.dtype = idx, spectrum.shape, spectrum.dtype
        return real_coefficients(spectrum, idx)

    @staticmethod
    @once_differentiable
    def backward(ctx: torch.autograd.function.FunctionCtx, g: Tensor) -> tuple:  # type: ignore[override]
        out = g.new_zeros(ctx.shape, dtype=ctx.dtype)
        real_coefficients_backward(g, ctx.idx, out)
        return out, None
