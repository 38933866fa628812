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

from collections.abc import Sequence

import torch

from ..errors import InvalidParameterError


def kept_modes(n: int, r: int) -> int:
    """The highest |k| kept when an n-grid signal is resampled to r points."""
    return (min(n, r) - 1) // 2


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
