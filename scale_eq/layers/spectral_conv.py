"""Published API (``scale_eq.layers.spectral_conv``) as thin subclasses of our layers.

The published package names its localised convolutions ``SpectralConv2dLocalized`` and
``SpectralConvLocalized1d`` with arguments ``(in_channel, out_channel, global_modes,
local_modes, device=None, dtype=torch.cfloat)``; code written against it (e.g. its README) runs
unmodified on these. Semantics are ours: a real spatial kernel on the G grid, exactly equivariant
(see :mod:`scale_eq.fourier.spectral_conv`); a complex ``dtype`` picks the real precision.
"""

from __future__ import annotations

import torch

from scale_datasets.ops.fourier import resample_spectrum, resample_spectrum_1d

from ..fourier.spectral_conv import SpectralConv1d, SpectralConv2d

__all__ = ["SpectralConv2dLocalized", "SpectralConvLocalized1d"]


class _Published:
    """The published constructor, ``forward(x_ft, pool=False)`` and ``get_feature``, for the 1D
    and 2D convolutions alike (``ndim`` and ``global_modes`` come from our layer)."""

    ndim: int
    global_modes: int
    weight: torch.Tensor

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        global_modes: int,
        local_modes: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = torch.cfloat,
    ) -> None:
        super().__init__(  # type: ignore[call-arg]
            in_channel, out_channel, global_modes, local_modes, device=device, dtype=dtype
        )

    def forward(self, x_ft: torch.Tensor, pool: bool = False) -> torch.Tensor:
        """As published: ``pool=True`` returns the output on the G grid (D_G of it)."""
        out = super().forward(x_ft)  # type: ignore[misc]
        if pool:
            crop = resample_spectrum if self.ndim == 2 else resample_spectrum_1d
            out = crop(out, self.global_modes)
        return out

    def get_feature(self, x: torch.Tensor) -> torch.Tensor:
        """Real inputs in, real feature maps out (fft -> layer -> ifft)."""
        axes = tuple(range(-self.ndim, 0))
        spectrum = torch.fft.fftn(x.to(self.weight.dtype), dim=axes, norm="forward")
        return torch.fft.ifftn(self.forward(spectrum), dim=axes, norm="forward").real


class SpectralConv2dLocalized(_Published, SpectralConv2d):
    """``SpectralConv2dLocalized(in_channel, out_channel, global_modes, local_modes)``."""


class SpectralConvLocalized1d(_Published, SpectralConv1d):
    """``SpectralConvLocalized1d(in_channel, out_channel, global_modes, local_modes)``."""
