"""Ideal Fourier resampling: the definition of scaling for the Fourier benchmarks and models.

D_r maps a real signal of length N (or an H x W image) to r samples (an r_h x r_w image) by
keeping its lowest frequencies: take the DFT with norm "forward" (coefficients are means, so the
mean is kept), keep exactly the modes |k| <= (min(N, r) - 1) // 2 on each axis, and invert on
the r grid. The Nyquist mode of an even grid is ambiguous (it is both +N/2 and -N/2) and is
dropped; no other mode is lost, so D_a(D_b(x)) == D_a(x) for a <= b, D_r of a signal already
band-limited to r is exact, and r > N zero-pads the spectrum (ideal interpolation).

Works on any leading batch/channel dims, for real tensors (`resample`, `resample_1d`) and for
full complex spectra (`resample_spectrum`, `resample_spectrum_1d`), in float32 or float64, and is
differentiable.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch

from ..errors import InvalidParameterError


def kept_modes(n: int, r: int | None = None) -> int:
    """The highest |k| kept when an n-grid signal is resampled to r points (default r = n: the
    highest |k| an n-point grid holds; its Nyquist mode, if any, is dropped).

    The one definition of the kept modes: |k| <= (min(n, r) - 1) // 2.
    """
    return (min(n, n if r is None else r) - 1) // 2


def _sizes(size: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    sizes = (size,) * ndim if isinstance(size, int) else tuple(int(s) for s in size)
    if len(sizes) != ndim or any(s < 1 for s in sizes):
        raise InvalidParameterError(f"size must be {ndim} positive int(s), got {size!r}")
    return sizes


def _crop_axis(spectrum: torch.Tensor, axis: int, r: int) -> torch.Tensor:
    """Keep |k| <= m along `axis` of a full spectrum and lay the modes out on an r grid."""
    n = spectrum.shape[axis]
    m = kept_modes(n, r)
    shape = list(spectrum.shape)
    shape[axis] = r
    out = spectrum.new_zeros(shape)
    out.narrow(axis, 0, m + 1).copy_(spectrum.narrow(axis, 0, m + 1))
    if m:
        out.narrow(axis, r - m, m).copy_(spectrum.narrow(axis, n - m, m))
    return out


def resample_spectrum(spectrum: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """D_r on a full 2D spectrum (fft2, norm "forward") of shape (..., H, W) -> (..., rh, rw)."""
    rh, rw = _sizes(size, 2)
    return _crop_axis(_crop_axis(spectrum, -2, rh), -1, rw)


def resample_spectrum_1d(spectrum: torch.Tensor, size: int) -> torch.Tensor:
    """D_r on a full 1D spectrum (fft, norm "forward") of shape (..., N) -> (..., r)."""
    (r,) = _sizes(size, 1)
    return _crop_axis(spectrum, -1, r)


def resample(x: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """D_r on real images (..., H, W) -> (..., rh, rw): ideal down- or up-scaling."""
    if x.is_complex():
        raise InvalidParameterError("resample takes real images; use resample_spectrum")
    rh, rw = _sizes(size, 2)
    w = x.shape[-1]
    half = torch.fft.rfft2(x, norm="forward")  # (..., H, W // 2 + 1)
    rows = _crop_axis(half, -2, rh)
    mw = kept_modes(w, rw)
    out = rows.new_zeros((*rows.shape[:-1], rw // 2 + 1))
    out[..., : mw + 1] = rows[..., : mw + 1]
    return torch.fft.irfft2(out, s=(rh, rw), norm="forward")


def resample_1d(x: torch.Tensor, size: int) -> torch.Tensor:
    """D_r on real signals (..., N) -> (..., r)."""
    if x.is_complex():
        raise InvalidParameterError("resample_1d takes real signals; use resample_spectrum_1d")
    (r,) = _sizes(size, 1)
    half = torch.fft.rfft(x, norm="forward")
    m = kept_modes(x.shape[-1], r)
    out = half.new_zeros((*half.shape[:-1], r // 2 + 1))
    out[..., : m + 1] = half[..., : m + 1]
    return torch.fft.irfft(out, n=r, norm="forward")


# The matrix form wins where FFTs are slow: small images (per-call overhead) and grids whose
# size has a large prime factor (generic radix or Bluestein); measured on the STL-10 and MNIST
# sizes in benchmarks/bench_multires.py.
_MATRIX_MAX_SIDE = 32
_MATRIX_MIN_PRIME = 17
# Samples per call of about this many bytes keep the work in the CPU caches (STL-10's 3 x 96 x 96
# at r = 97: 125 us per image in chunks of 16, 190 us in one call of 128).
_CHUNK_BYTES = 2 * 1024 * 1024


@functools.lru_cache(maxsize=512)
def resampling_matrix(
    n: int, r: int, dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> torch.Tensor:
    """The real (r, n) matrix A of 1D D_r, D_r(x) = A x; in 2D, D_r(X) = A_h X A_w^T.

    A[j, t] = (1 + 2 sum_{k=1}^{m} cos(2 pi k (j / r - t / n))) / n with m = kept_modes(n, r):
    the same kept modes as `resample`, summed in float64 and rounded once to `dtype`.
    """
    m = kept_modes(n, r)
    k = torch.arange(1, m + 1, dtype=torch.float64)
    offset = (
        torch.arange(r, dtype=torch.float64)[:, None] / r - torch.arange(n, dtype=torch.float64) / n
    )
    total = torch.cos(2 * math.pi * k[:, None, None] * offset).sum(0) if m else 0.0
    matrix = (1 + 2 * total) / n if m else torch.full((r, n), 1.0 / n, dtype=torch.float64)
    return matrix.to(dtype=dtype, device=device)


@functools.lru_cache(maxsize=4096)
def _by_matrix(h: int, w: int, r: int) -> bool:
    """Whether the matrices beat the FFT for an (h, w) -> (r, r) resample (see above)."""
    largest, n, p = 1, r, 2
    while n > 1:
        while n % p == 0:
            largest, n = p, n // p
        p += 1
    return max(h, w) <= _MATRIX_MAX_SIDE or largest >= _MATRIX_MIN_PRIME


def resample_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """D_r on real images (B, C, H, W) -> (B, C, r, r), by FFT or by two GEMMs with
    `resampling_matrix`, whichever is cheaper for these sizes (the same values up to float
    rounding, ~1e-6 in float32). For batches of samples, as the datasets render them."""
    (r,) = _sizes(size, 1)
    b, c, h, w = x.shape
    step = max(1, _CHUNK_BYTES // max(1, c * h * w * x.element_size()))
    if x.is_cuda or b <= step:
        return _resample_chunk(x, r)
    return torch.cat([_resample_chunk(chunk, r) for chunk in x.split(step)])


def _resample_chunk(x: torch.Tensor, r: int) -> torch.Tensor:
    b, c, h, w = x.shape
    if not _by_matrix(h, w, r):
        return resample(x, r)
    a_h = resampling_matrix(h, r, x.dtype, x.device)
    a_w = resampling_matrix(w, r, x.dtype, x.device)
    rows = (x.reshape(b * c * h, w) @ a_w.T).reshape(b * c, h, r)  # every row resampled
    return torch.matmul(a_h, rows).reshape(b, c, r, r)  # then every column: contiguous out
