"""Localised spectral convolution: a small real kernel on a fixed canonical grid, in Fourier.

Every tensor between the Fourier layers is the full DFT (``fft2`` / ``fft``, norm "forward") of a
real feature map. A kernel defined on the *input's* pixel grid cannot commute with ideal
down-scaling D_r (a 5-pixel kernel covers a different fraction of a 28- and of an 8-pixel image).
Here the kernel is an ``n x n`` real array placed, centred at the origin with wrap-around, on a
fixed ``G x G`` canonical grid. Its plain-sum DFT ``K[o, i, k]`` is then the same function of the
frequency ``k`` whatever the input resolution, and the layer multiplies the input spectrum mode
by mode (a channel mix per frequency) for ``|k| <= (min(G, N) - 1) // 2``, zeroing every other
mode. D_r keeps exactly the modes ``|k| <= (r - 1) // 2``, so ``D_r(conv(x)) == conv(D_r(x))``
for every ``r <= N``: both sides hold ``K(k) X(k)`` on ``|k| <= (min(G, r) - 1) // 2`` and zero
elsewhere.

On the G grid the layer is exactly the circular convolution with the kernel (the DFT is a plain
sum), so it behaves like an ordinary convolution whose support is the fixed fraction ``n / G`` of
the image. Unlike the published parameterisation (complex weights pushed through a Dirichlet
matrix), the spatial kernel is the parameter itself: it is real, as the kernel of a map between real
images must be, so no parameter is dead (the published imaginary halves get no gradient).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable

import torch
from torch import nn

from scale_datasets.ops.fourier import kept_modes

from ._layout import from_mode_major, is_mode_major, mode_major

__all__ = [
    "SpectralConv1d",
    "SpectralConv2d",
    "SpectralConvBlock1d",
    "SpectralConvBlock2d",
    "SpectralSkip",
    "complex_dtype_for",
]

_COMPLEX = {
    torch.float16: torch.complex32,
    torch.float32: torch.complex64,
    torch.float64: torch.complex128,
}


def complex_dtype_for(dtype: torch.dtype) -> torch.dtype:
    """The complex dtype whose real and imaginary parts have the precision of ``dtype``."""
    if dtype.is_complex:
        return dtype
    try:
        return _COMPLEX[dtype]
    except KeyError:
        raise ValueError(f"no complex dtype for {dtype}") from None


def _check_modes(global_modes: int, local_modes: int) -> None:
    if int(global_modes) != global_modes or global_modes < 1:
        raise ValueError(f"global_modes must be a positive int, got {global_modes!r}")
    if int(local_modes) != local_modes or not 1 <= local_modes <= global_modes:
        raise ValueError(
            f"local_modes must be an int in [1, global_modes={global_modes}], got {local_modes!r}"
        )


def _real_weight_dtype(
    in_channels: int, out_channels: int, dtype: torch.dtype | None
) -> torch.dtype | None:
    """Check the channel counts; the real dtype of a layer's weights (complex picks its part)."""
    if in_channels < 1 or out_channels < 1:
        raise ValueError(f"channels must be >= 1, got {in_channels} -> {out_channels}")
    return dtype.to_real() if dtype is not None and dtype.is_complex else dtype


def _dft_matrix(global_modes: int, local_modes: int, device: torch.device) -> torch.Tensor:
    """E[k, a] = exp(-2 pi i k (a - n // 2) / G): the G-grid DFT of a centred length-n kernel.

    Rows are the frequencies ``k = 0..M, -M..-1`` with ``M = (G - 1) // 2`` (fft order on a
    ``2M + 1`` grid), so the kernel of an input with fewer modes m is rows ``0..m`` and the last
    m. The product ``k (a - n // 2)`` is reduced modulo G in integers and the matrix built in
    float64, so the phases are exact to one rounding in either working precision.
    """
    m = kept_modes(global_modes)
    k = torch.cat([torch.arange(m + 1), torch.arange(-m, 0)])
    offsets = torch.arange(local_modes) - local_modes // 2
    turns = torch.remainder(torch.outer(k, offsets), global_modes).to(torch.float64)
    phase = (-2.0 * math.pi / global_modes) * turns
    return torch.polar(torch.ones_like(phase), phase).to(device)


class _CachedKernel:
    """Caches a kernel spectrum derived from a weight, for inference.

    While autograd records (grad enabled and the weight requires grad) the spectrum is recomputed
    on every call so the graph reaches the weight. Otherwise it is kept per (dtype, device) and
    reused while the weight is the same tensor object, at the same storage, at the same in-place
    version (optimisers and ``load_state_dict`` bump ``_version``; ``.to()`` makes a new tensor).
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[torch.dtype, torch.device], tuple] = {}

    def get(
        self,
        weight: torch.Tensor,
        dtype: torch.dtype,
        compute: Callable[[], torch.Tensor],
    ) -> torch.Tensor:
        if torch.is_grad_enabled() and weight.requires_grad:
            return compute().to(dtype)
        key = (dtype, weight.device)
        stamp = (weight._version, weight.data_ptr())
        entry = self._entries.get(key)
        if entry is not None and entry[0]() is weight and entry[1] == stamp:
            return entry[2]
        with torch.no_grad():
            value = compute().to(dtype)
        self._entries[key] = (weakref.ref(weight), stamp, value)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __deepcopy__(self, memo: dict) -> _CachedKernel:
        return _CachedKernel()

    def __getstate__(self) -> dict:
        return {"_entries": {}}


class _SpectralConvNd(nn.Module):
    """Shared parts of the 1D and 2D localised spectral convolutions."""

    ndim: int = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        global_modes: int,
        local_modes: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_modes(global_modes, local_modes)
        dtype = _real_weight_dtype(in_channels, out_channels, dtype)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.global_modes = int(global_modes)
        self.local_modes = int(local_modes)
        shape = (self.out_channels, self.in_channels) + (self.local_modes,) * self.ndim
        self.weight = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
        self._kernel_cache = _CachedKernel()
        self.reset_parameters()

    @property
    def max_modes(self) -> int:
        """The highest |k| the layer can pass: (G - 1) // 2."""
        return kept_modes(self.global_modes)

    def reset_parameters(self) -> None:
        """Kaiming-like normal init over the fan-in ``in_channels * n**ndim``.

        Each output mode is ``sum_i K[o, i, k] X[i, k]`` with ``E|K(k)|^2 = n**ndim * std**2``, so
        ``std**2 = 1 / (in_channels * n**ndim)`` keeps the energy of every passed mode.
        """
        fan_in = self.in_channels * self.local_modes**self.ndim
        nn.init.normal_(self.weight, std=fan_in**-0.5)
        self._kernel_cache.clear()

    def _compute_kernel(self) -> torch.Tensor:
        raise NotImplementedError

    def _kernel(self, dtype: torch.dtype | None) -> torch.Tensor:
        """The kernel spectrum in the layout of ``_compute_kernel``, cached outside autograd."""
        dtype = complex_dtype_for(dtype or self.weight.dtype)
        return self._kernel_cache.get(self.weight, dtype, self._compute_kernel)

    def spatial_kernel(self) -> torch.Tensor:
        """The kernel as a real map on the G grid, centred at the origin with wrap-around."""
        g, n = self.global_modes, self.local_modes
        idx = (torch.arange(n, device=self.weight.device) - n // 2) % g
        out = self.weight.new_zeros(self.weight.shape[:2] + (g,) * self.ndim)
        if self.ndim == 1:
            out[..., idx] = self.weight
        else:
            out[..., idx[:, None], idx[None, :]] = self.weight
        return out

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, global_modes={self.global_modes}, "
            f"local_modes={self.local_modes}"
        )

    def _check_input(self, x_ft: torch.Tensor) -> None:
        if not x_ft.is_complex() or x_ft.dim() != self.ndim + 2:
            raise ValueError(
                f"{type(self).__name__} takes a complex spectrum (B, C{', N' * self.ndim}), "
                f"got {tuple(x_ft.shape)} {x_ft.dtype}"
            )
        if x_ft.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} channels, got {x_ft.shape[1]}")


def _mode_index(m: int, n: int, device: torch.device) -> torch.Tensor:
    """Positions of the frequencies 0..m, -m..-1 in an fft-ordered axis of length n."""
    return torch.cat([torch.arange(m + 1), torch.arange(n - m, n)]).to(device)


class SpectralConv2d(_SpectralConvNd):
    """Localised spectral convolution: complex (B, Cin, H, W) spectrum -> (B, Cout, H, W).

    Args:
        in_channels, out_channels: channel counts.
        global_modes: G, the side of the canonical grid; modes beyond (min(G, N) - 1) // 2 are
            zeroed, so G bounds the bandwidth (and cost) of the layer.
        local_modes: n, the side of the real spatial kernel on the G grid (n <= G).

    The mode-wise channel mix runs as one batched matmul over the modes of the mode-major input
    (:mod:`._layout`), with the kernel spectrum cached (outside autograd) as (ky, kx, Cin, Cout).
    A block's 1x1 skip folds into the same product (``forward(x, skip=...)``), so conv and skip
    are one product instead of a gather / scatter of the kept modes in (B, C, H, W) memory
    (timings: benchmarks/README.md, bench_fourier).
    """

    ndim = 2

    def _compute_kernel(self) -> torch.Tensor:
        e = _dft_matrix(self.global_modes, self.local_modes, self.weight.device)
        e = e.to(complex_dtype_for(self.weight.dtype))
        return torch.einsum("ya,xb,oiab->yxio", e, e, self.weight.to(e.dtype)).contiguous()

    def kernel_spectrum(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """K[o, i, ky, kx] for |k| <= (G - 1) // 2 (fft order on a 2M + 1 grid per axis)."""
        return self._kernel(dtype).permute(3, 2, 0, 1)  # stored (ky, kx, Cin, Cout)

    def forward(self, x_ft: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        """K(k) x(k) on the kept modes, 0 elsewhere; with ``skip`` (a real (Cout, Cin) matrix,
        a :class:`SpectralSkip`'s weight) plus ``skip @ x(k)`` on every mode, in one product.

        The result is mode-major (:func:`is_mode_major`): each mode's channel mix is a GEMM on
        a contiguous (B, Cin) block, so neither the input (when it is mode-major already) nor
        the output is transposed or gathered.
        """
        self._check_input(x_ft)
        b, _, h, w = x_ft.shape
        mh = kept_modes(self.global_modes, h)
        mw = kept_modes(self.global_modes, w)
        big = 2 * self.max_modes + 1
        dev = x_ft.device
        ky, kx = _mode_index(mh, big, dev), _mode_index(mw, big, dev)
        iy, ix = _mode_index(mh, h, dev), _mode_index(mw, w, dev)
        pos = (iy[:, None] * w + ix[None, :]).reshape(-1)  # kept modes, flat in (H, W)
        cin, cout = self.in_channels, self.out_channels
        kernel = self._kernel(x_ft.dtype)[ky[:, None], kx[None, :]].reshape(-1, cin, cout)
        xm = mode_major(x_ft)  # (H W, B, Cin)
        if skip is not None or 4 * pos.numel() >= 3 * h * w:
            # (nearly) every mode is mixed: one product over all modes with the kernel
            # scattered into the skip matrix (or zeros), and no copy of the input or output
            if skip is None:
                full = kernel.new_zeros(h * w, cin, cout)
            else:
                full = skip.T.to(kernel.dtype).expand(h * w, cin, cout)
            out = torch.bmm(xm, torch.index_add(full, 0, pos, kernel))
        else:  # a few low modes of a large input: mix only those
            mixed = torch.bmm(xm.index_select(0, pos), kernel)
            out = torch.index_copy(xm.new_zeros(h * w, b, cout), 0, pos, mixed)
        return from_mode_major(out, h, w)


class SpectralConv1d(_SpectralConvNd):
    """Localised spectral convolution for signals: complex (B, Cin, L) spectrum -> (B, Cout, L)."""

    ndim = 1

    def _compute_kernel(self) -> torch.Tensor:
        e = _dft_matrix(self.global_modes, self.local_modes, self.weight.device)
        e = e.to(complex_dtype_for(self.weight.dtype))
        return torch.einsum("ya,oia->yio", e, self.weight.to(e.dtype)).contiguous()

    def kernel_spectrum(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """K[o, i, k] for |k| <= (G - 1) // 2 (fft order on a 2M + 1 grid)."""
        return self._kernel(dtype).permute(2, 1, 0)  # stored (k, Cin, Cout)

    def forward(self, x_ft: torch.Tensor) -> torch.Tensor:
        self._check_input(x_ft)
        b, _, n = x_ft.shape
        m = kept_modes(self.global_modes, n)
        k = _mode_index(m, 2 * self.max_modes + 1, x_ft.device)
        i = _mode_index(m, n, x_ft.device)
        kernel = self._kernel(x_ft.dtype)[k]  # (P, Cin, Cout)
        mixed = torch.bmm(x_ft.permute(2, 0, 1)[i], kernel)  # (P, B, Cout)
        out = x_ft.new_zeros(b, self.out_channels, n)
        out.permute(2, 0, 1)[i] = mixed
        return out


class SpectralSkip(nn.Module):
    """1x1 channel mix applied to every mode: the skip path of a block (any resolution, 1D or 2D).

    A real (Cout, Cin) matrix acts identically on every frequency, so it commutes with D_r
    exactly and maps spectra of real maps to spectra of real maps.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        dtype = _real_weight_dtype(in_channels, out_channels, dtype)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels, device=device, dtype=dtype)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Normal init with variance 1 / in_channels (a 1x1 conv's fan-in)."""
        nn.init.normal_(self.weight, std=self.in_channels**-0.5)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}"

    def forward(self, x_ft: torch.Tensor) -> torch.Tensor:
        if not x_ft.is_complex() or x_ft.dim() < 3 or x_ft.shape[1] != self.in_channels:
            raise ValueError(
                f"SpectralSkip takes a complex (B, {self.in_channels}, ...) spectrum, "
                f"got {tuple(x_ft.shape)} {x_ft.dtype}"
            )
        if is_mode_major(x_ft):  # keep the layout: one GEMM on the (H W B, Cin) rows
            b, _, h, w = x_ft.shape
            rows = mode_major(x_ft).reshape(-1, self.in_channels)
            out = rows @ self.weight.T.to(x_ft.dtype)
            return from_mode_major(out.view(h * w, b, self.out_channels), h, w)
        # A real matrix acts on the real and imaginary parts alike: one real GEMM on the
        # interleaved (re, im) view costs a quarter of a complex one.
        w = self.weight.to(x_ft.real.dtype)
        pairs = torch.view_as_real(x_ft.resolve_conj())
        flat = pairs.reshape(x_ft.shape[0], self.in_channels, -1)
        out = torch.matmul(w, flat).reshape(x_ft.shape[0], self.out_channels, *pairs.shape[2:])
        return torch.view_as_complex(out)


class _SpectralConvBlock(nn.Module):
    conv_cls: type[_SpectralConvNd] = SpectralConv2d

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        global_modes: int,
        local_modes: int,
        *,
        skip: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.conv = self.conv_cls(in_channels, out_channels, global_modes, local_modes, **kw)
        self.skip = SpectralSkip(in_channels, out_channels, **kw) if skip else None

    def forward(self, x_ft: torch.Tensor) -> torch.Tensor:
        if self.skip is not None and isinstance(self.conv, SpectralConv2d):
            return self.conv(x_ft, skip=self.skip.weight)  # conv + skip in one product
        out = self.conv(x_ft)
        return out if self.skip is None else out + self.skip(x_ft)


class SpectralConvBlock2d(_SpectralConvBlock):
    """conv(x) + skip(x): the linear part of a Fourier block (published: L_i + conv_i)."""

    conv_cls = SpectralConv2d


class SpectralConvBlock1d(_SpectralConvBlock):
    """conv(x) + skip(x) for signals."""

    conv_cls = SpectralConv1d
