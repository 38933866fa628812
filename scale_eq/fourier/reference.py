"""The scale-equivariant nonlinearity and the head's features computed from their definitions.

Python loops over resolutions (for the nonlinearity, those that bring new output rings: an FFT
pair, the resolution's instance norm and sigma each; for the head, a masked inverse FFT and a
max-pool each): slow, but written straight from the definitions, so they are what the batched
layers (:mod:`.nonlinearity`, :mod:`.head`) are checked against in the tests.
(``benchmarks/bench_fourier.py`` times the batched layers against its own loops.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from scale_datasets.ops.fourier import (
    kept_modes,
    resample,
    resample_1d,
    resample_spectrum,
    resample_spectrum_1d,
)

if TYPE_CHECKING:
    from .head import ScaleConsistentHead
    from .nonlinearity import ScaleEqNonlinearity, ScaleEqNonlinearity1d

__all__ = ["reference_forward", "reference_forward_1d", "reference_head_features"]


def _freqs_of(size: int, device: torch.device) -> torch.Tensor:
    """|k| of each position of an fft-ordered axis of length ``size``."""
    k = torch.arange(size, device=device)
    return torch.minimum(k, size - k)


def _ring_index(lo: int, hi: int, grid: int, out: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """DFT indices (on a `grid` grid and an `out` grid) of every 2D mode with lo <= ring <= hi."""
    k = torch.arange(-hi, hi + 1)
    kx, ky = torch.meshgrid(k, k, indexing="ij")
    sel = torch.maximum(kx.abs(), ky.abs()) >= lo
    kx, ky = kx[sel], ky[sel]
    return kx % grid, ky % grid, kx % out, ky % out


def _resample_half(half: Tensor, n: int, r: int) -> Tensor:
    """D_r of real n x n maps given their rfft2 (norm "forward"): crop (or zero-pad, r > n),
    then irfft2 on r x r."""
    m = kept_modes(n, r)
    rows = torch.cat([half[..., : m + 1, : m + 1], half[..., n - m :, : m + 1]], dim=-2)
    crop = F.pad(rows, (0, r // 2 - m, 0, 0))  # (.., 2m + 1, r // 2 + 1)
    crop = torch.cat(
        [
            crop[..., : m + 1, :],
            crop.new_zeros(*crop.shape[:-2], r - 2 * m - 1, r // 2 + 1),
            crop[..., m + 1 :, :],
        ],
        dim=-2,
    )
    return torch.fft.irfft2(crop, s=(r, r), norm="forward")


def reference_forward(
    layer: ScaleEqNonlinearity, spectrum: Tensor, *, literal: bool = False
) -> Tensor:
    """The layer's output computed directly from its definition: a loop over resolutions.

    For each resolution r of the grid that brings new rings: resample the real maps to r (an
    input off the grid is up-sampled to the next grid point for its top rings),
    apply the resolution's instance norm and sigma (then, with pooling, low-pass to
    ceil(r / p) modes and max-pool), take the DFT and copy the new rings into the output.
    The maps' rfft2 is taken once, as the published loop does; ``literal=True`` calls
    ``resample(x, r)`` (an rfft2 of the full maps per resolution) instead.
    """
    n = spectrum.shape[-1]
    x = torch.fft.ifft2(spectrum, norm="forward").real
    half = None if literal else torch.fft.rfft2(x, norm="forward")
    m = layer.output_size(n)
    out = spectrum.new_zeros(*spectrum.shape[:-2], m, m)
    for step in layer.schedule(n):
        y = resample(x, step.res) if half is None else _resample_half(half, n, step.res)
        if layer.norms is not None:
            y = layer.norms[str(step.res)](y)
        y = layer.activation(y)
        if layer.pool_window > 1:
            y = resample(resample(y, step.grid), step.res)  # D_r D_q: anti-alias
            y = F.max_pool2d(y, layer.pool_window, layer.pool_window, ceil_mode=True)
        z = torch.fft.fft2(y, norm="forward")  # (.., q, q)
        gx, gy, ox, oy = _ring_index(step.lo, step.hi, step.grid, m)
        out[..., ox, oy] = z[..., gx, gy]
    return out


def reference_forward_1d(layer: ScaleEqNonlinearity1d, spectrum: Tensor) -> Tensor:
    """The 1D layer's output from its definition: a loop over resolutions."""
    n = spectrum.shape[-1]
    x = torch.fft.ifft(spectrum, norm="forward").real
    out = torch.zeros_like(spectrum)
    for step in layer.schedule(n):
        y = resample_1d(x, step.res)
        if layer.norms is not None:
            y = layer.norms[str(step.res)](y)
        z = torch.fft.fft(layer.activation(y), norm="forward")
        pos = torch.arange(step.lo, step.hi + 1)
        k = torch.cat([pos, -pos[pos > 0]])
        out[..., k % n] = z[..., k % step.grid]
    return out


def reference_head_features(head: ScaleConsistentHead, spectrum: Tensor) -> Tensor:
    """The head's features from the definition: per resolution, mask the spectrum on the grid,
    invert it with an FFT and max-pool (what :meth:`ScaleConsistentHead.features` computes)."""
    n = head._check_spectrum(spectrum)
    g = head.grid_size
    freqs = _freqs_of(g, spectrum.device)
    pooled = []
    if head.dims == 2:
        on_grid = resample_spectrum(spectrum, g)[..., : g // 2 + 1]  # rfft half
        for r in head.resolutions(n):
            m = kept_modes(min(r, g))
            mask = (freqs[:, None] <= m) & (freqs[None, : g // 2 + 1] <= m)
            img = torch.fft.irfft2(on_grid * mask, s=(g, g), norm="forward")
            pooled.append(F.max_pool2d(img, head.pool_window, ceil_mode=True).flatten(1))
    else:
        on_grid = resample_spectrum_1d(spectrum, g)[..., : g // 2 + 1]
        for r in head.resolutions(n):
            m = kept_modes(min(r, g))
            sig = torch.fft.irfft(on_grid * (freqs[: g // 2 + 1] <= m), n=g, norm="forward")
            pooled.append(F.max_pool1d(sig, head.pool_window, ceil_mode=True).flatten(1))
    return torch.stack(pooled, dim=1)
