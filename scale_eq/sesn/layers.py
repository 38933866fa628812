"""Scale convolutions on the group of translations and scales (SESN, PROTOCOLS.md 6.1).

Feature maps on the group are (B, C, S, H, W): channel, internal scale, position. A kernel is a
learned combination of the F basis functions of :mod:`.hermite` at each of the layer's S
internal scales, ``kernel[o, i, s] = sum_f weight[o, i, f] * basis[f, s]``, so one weight tensor
(independent of S and of the kernel size) gives every scale's kernel.

* :class:`SESConvZ2H`: image (B, C, H, W) -> (B, C', S, H', W'), every scale's kernel on the image;
* :class:`SESConvHH`: (B, C, S, H, W) -> (B, C', S, H', W'); output scale s sees input scales
  s .. s + scale_size - 1 (zero beyond the last), with its own kernel per offset; one grouped
  conv over the S scales;
* :class:`SESConvHH1x1`: a 1x1 channel mix at every scale and position;
* :class:`ScaleMaxProjection`: max over the scale axis.

The basis is built from the layer's :class:`~.scales.InternalScales`: once per (dtype, device)
when the scales are fixed, every training step when they are learned (differentiable, so the
scales get gradients), and cached outside autograd in evaluation. Padding is ``K // 2`` for the
current kernel size K, so the output size does not change when learned scales change K.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .hermite import BasisSpec, hermite_basis, num_functions
from .scales import InternalScales, ScaleSpec

__all__ = ["SESConvHH", "SESConvHH1x1", "SESConvZ2H", "ScaleMaxProjection"]


def _stamp(tensors: list[Tensor]) -> tuple | None:
    """(storage, in-place version) of each tensor; None for inference tensors (no version)."""
    try:
        return tuple((t.data_ptr(), t._version) for t in tensors)
    except RuntimeError:
        return None


class _ScaleConv(nn.Module):
    """Weights, bias, internal scales and the basis cache shared by Z2 -> H and H -> H."""

    #: extra weight axes between (Cout, Cin) and the basis functions (H -> H: the extent)
    extent: tuple[int, ...] = ()

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scales: ScaleSpec | InternalScales,
        basis: BasisSpec | None = None,
        *,
        stride: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1 or stride < 1:
            raise ValueError(
                f"channels and stride must be >= 1, got {in_channels}, {out_channels}, {stride}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.basis_spec = basis or BasisSpec()
        self.scales = scales if isinstance(scales, InternalScales) else InternalScales(scales)
        self.num_funcs = num_functions(self.basis_spec)
        shape = (out_channels, in_channels, *self.extent, self.num_funcs)
        self.weight = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self._cache: dict[tuple, tuple[tuple, tuple, Tensor]] = {}  # not in the state_dict
        self.reset_parameters()

    @property
    def num_scales(self) -> int:
        return self.scales.num_scales

    def reset_parameters(self) -> None:
        """Kaiming-uniform over the fan-in in basis functions (SESN's initialisation)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def kernel_size(self) -> int:
        return self.scales.kernel_size()

    def basis(self, dtype: torch.dtype | None = None) -> Tensor:
        """(F, S, K, K) for the current scales, in ``dtype`` (default the weight's).

        Rebuilt (differentiably) while autograd records and the scales are learnable; otherwise
        cached per (dtype, device) until the scale values change, built in float64 and cast.
        The cached tensor is made outside inference mode, so a forward under
        ``torch.inference_mode()`` (a validation sanity check) cannot poison later training.
        """
        dtype = dtype or self.weight.dtype
        rebuild = self.scales.learnable and torch.is_grad_enabled()
        if rebuild and any(p.requires_grad for p in self.scales.parameters()):
            # one forward of the scales and one device -> host copy give both K and the supports
            scales = self.scales()
            host = scales.detach().cpu()
            k = self.scales.kernel_size(self.scales.exact_values(host))
            return hermite_basis(
                scales.to(dtype), k, self.basis_spec, values=host.to(dtype).tolist()
            )
        device = self.weight.device
        key = (dtype, device)
        # the scales' tensors are stamped by identity and in-place version (optimiser steps and
        # load_state_dict bump it), so a steady state reads no scale value back from the
        # device (no synchronisation per forward on a GPU)
        stamp = _stamp([*self.scales.parameters(), *self.scales.buffers()])
        hit = self._cache.get(key)
        if hit is not None and stamp is not None and hit[0] == stamp:
            return hit[2]
        values = self.scales.exact_values()
        if hit is None or hit[1] != values:
            with torch.inference_mode(False), torch.no_grad():
                exact = torch.tensor(values, dtype=torch.float64, device=device)
                k = self.scales.kernel_size(values)
                value = hermite_basis(exact, k, self.basis_spec, values=values).to(dtype)
        else:
            value = hit[2]
        self._cache[key] = (stamp, values, value)
        return value

    def _mix(self, dtype: torch.dtype) -> Tensor:
        """weight (..., F) @ basis (F, S*K*K): (..., S, K, K)."""
        basis = self.basis(dtype)
        k = basis.shape[-1]
        flat = self.weight.to(dtype) @ basis.reshape(self.num_funcs, -1)
        return flat.reshape(*self.weight.shape[:-1], self.num_scales, k, k)

    def _add_bias(self, y: Tensor) -> Tensor:
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1, 1).to(y.dtype)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, scales={self.num_scales}, "
            f"basis={self.basis_spec.basis_type}{self.basis_spec.effective_size}, "
            f"stride={self.stride}, bias={self.bias is not None}"
        )


class SESConvZ2H(_ScaleConv):
    """Z2 -> H: (B, Cin, H, W) -> (B, Cout, S, H', W'), padding K // 2.

    ``SESConvZ2H(in_channels, out_channels, scales, basis=BasisSpec(), *, stride=1, bias=True)``
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"SESConvZ2H expects (B, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        kernel = self._mix(x.dtype)  # (Cout, Cin, S, K, K)
        cout, cin, s, k, _ = kernel.shape
        kernel = kernel.transpose(1, 2).reshape(cout * s, cin, k, k)
        y = F.conv2d(x, kernel, stride=self.stride, padding=k // 2)
        return self._add_bias(y.view(x.shape[0], cout, s, *y.shape[-2:]))


class SESConvHH(_ScaleConv):
    """H -> H: (B, Cin, S, H, W) -> (B, Cout, S, H', W'), inter-scale extent ``scale_size``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scales: ScaleSpec | InternalScales,
        basis: BasisSpec | None = None,
        *,
        scale_size: int = 1,
        stride: int = 1,
        bias: bool = True,
    ) -> None:
        if scale_size < 1:
            raise ValueError(f"scale_size must be >= 1, got {scale_size}")
        self.scale_size = scale_size
        self.extent = (scale_size,)
        super().__init__(in_channels, out_channels, scales, basis, stride=stride, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        s, e = self.num_scales, self.scale_size
        if x.dim() != 5 or x.shape[1] != self.in_channels or x.shape[2] != s:
            raise ValueError(
                f"SESConvHH expects (B, {self.in_channels}, {s}, H, W), got {tuple(x.shape)}"
            )
        kernel = self._mix(x.dtype)  # (Cout, Cin, E, S, K, K)
        cout, cin, _, _, k, _ = kernel.shape
        # output scale j reads input scales j .. j + E - 1: stack them as channels (offset
        # slowest) and run one conv with a group per output scale
        b, _, _, h, w = x.shape
        if e > 1:
            x = F.pad(x, (0, 0, 0, 0, 0, e - 1))
        windows = torch.stack([x[:, :, i : i + s] for i in range(e)], dim=1)  # (B,E,Cin,S,H,W)
        windows = windows.permute(0, 3, 1, 2, 4, 5).reshape(b, s * e * cin, h, w)
        kernel = kernel.permute(3, 0, 2, 1, 4, 5).reshape(s * cout, e * cin, k, k)
        y = F.conv2d(windows, kernel, stride=self.stride, padding=k // 2, groups=s)
        y = y.view(b, s, cout, *y.shape[-2:]).transpose(1, 2)
        return self._add_bias(y)


class SESConvHH1x1(nn.Module):
    """A 1x1 channel mix at every scale: (B, Cin, S, H, W) -> (B, Cout, S, H', W')."""

    def __init__(
        self, in_channels: int, out_channels: int, *, stride: int = 1, bias: bool = True
    ) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, 1, stride=(1, stride, stride), bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5:
            raise ValueError(f"SESConvHH1x1 expects (B, C, S, H, W), got {tuple(x.shape)}")
        return self.conv(x)


class ScaleMaxProjection(nn.Module):
    """(B, C, S, H, W) -> (B, C, H, W): the maximum over the scale axis."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5:
            raise ValueError(f"ScaleMaxProjection expects (B, C, S, H, W), got {tuple(x.shape)}")
        return x.max(dim=2).values
