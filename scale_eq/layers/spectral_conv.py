"""Published API (``scale_eq.layers.spectral_conv``) as thin subclasses of our layers.

The published package names its localised convolutions ``SpectralConv2dLocalized`` and
``SpectralConvLocalized1d`` with arguments ``(in_channel, out_channel, global_modes,
local_modes, device=None, dtype=torch.cfloat)``; code written against it (e.g. its README) runs
unmodified on these. Semantics are ours: a real spatial kernel on the G grid, exactly equivariant
(see :mod:`scale_eq.fourier.spectral_conv`); a complex ``dtype`` picks the real precision.
"""

from __future__ import annotations

import torch

from ..fourier.spectral_conv import SpectralConv1d, SpectralConv2d

__all__ = ["SpectralConv2dLocalized", "SpectralConvLocalized1d"]


def _real(dtype: torch.dtype | None) -> torch.dtype | None:
    return dtype.to_real() if dtype is not None and dtype.is_complex else dtype


class SpectralConv2dLocalized(SpectralConv2d):
    """``SpectralConv2dLocalized(in_channel, out_channel, global_modes, local_modes)``."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        global_modes: int,
        local_modes: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = torch.cfloat,
    ) -> None:
        super().__init__(
            in_channel, out_channel, global_modes, local_modes, device=device, dtype=_real(dtype)
        )

    def forward(self, x_ft: torch.Tensor, pool: bool = False) -> torch.Tensor:
        """As published: ``pool=True`` returns the output on the G x G grid (D_G of it)."""
        out = super().forward(x_ft)
        if pool:
            from scale_datasets.ops.fourier import resample_spectrum

            out = resample_spectrum(out, self.global_modes)
        return out

    def get_feature(self, x: torch.Tensor) -> torch.Tensor:
        """Real images in, real feature maps out (fft2 -> layer -> ifft2)."""
        spectrum = torch.fft.fft2(x.to(self.weight.dtype), norm="forward")
        return torch.fft.ifft2(self.forward(spectrum), norm="forward").real


class SpectralConvLocalized1d(SpectralConv1d):
    """``SpectralConvLocalized1d(in_channel, out_channel, global_modes, local_modes)``."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        global_modes: int,
        local_modes: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = torch.cfloat,
    ) -> None:
        super().__init__(
            in_channel, out_channel, global_modes, local_modes, device=device, dtype=_real(dtype)
        )

    def forward(self, x_ft: torch.Tensor, pool: bool = False) -> torch.Tensor:
        """As published: ``pool=True`` returns the output on the G grid (D_G of it)."""
        out = super().forward(x_ft)
        if pool:
            from scale_datasets.ops.fourier import resample_spectrum_1d

            out = resample_spectrum_1d(out, self.global_modes)
        return out
