"""Hermite-Gaussian bases of scale-equivariant steerable convolutions (SESN, PROTOCOLS.md 6.1).

The 1D function of scale sigma and order k, sampled on the integer offsets ``-(n//2)..n//2``::

    psi_{sigma,k}(x) = (1 / sigma) * exp(-x^2 / (2 sigma^2)) * He_k(x / sigma)

with He_k the probabilists' Hermite polynomial; 2D functions are outer products (the first axis
carries the order ``kx``). For the internal scale sigma_i of a layer whose kernels are K x K, the
functions are sampled on the support ``n_i = 2 * floor(floor(K * sigma_i / sigma_max) / 2) + 1``
(odd, centred) and zero-padded to K x K, so larger scales get wider supports. Two bases:

* **A**: every order pair ``kx, ky < eff`` (eff^2 functions);
* **B**: every pair with ``kx + ky <= max_order`` (15 for max_order 4) at sigma, sigma / mult,
  sigma / mult^2, ... until eff^2 functions exist (the list is cut at eff^2).

Finally each function is divided by the L2 norm of its version at the smallest scale, so one
weight means the same at every scale up to the 1/sigma^2 that makes the basis scale-equivariant.

Everything is torch and vectorised over scales and orders (one polynomial recurrence, one outer
product), so the basis is differentiable with respect to the scales and cheap to rebuild every
step: the learnable-scale models (:mod:`.scales`) do exactly that. The supports are integers
(piecewise constant in sigma); the gradient flows through the sampled values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor

__all__ = [
    "BasisSpec",
    "hermite_basis",
    "hermite_functions_1d",
    "num_functions",
    "support_sizes",
]

BasisType = Literal["A", "B"]


@dataclass(frozen=True)
class BasisSpec:
    """The shape of a basis: type, effective size (eff^2 functions) and, for B, its orders."""

    basis_type: BasisType = "B"
    effective_size: int = 7
    mult: float = 1.5
    max_order: int = 4

    def __post_init__(self) -> None:
        if self.basis_type not in get_args(BasisType):
            raise ValueError(f"basis_type must be 'A' or 'B', got {self.basis_type!r}")
        if self.effective_size < 1:
            raise ValueError(f"effective_size must be >= 1, got {self.effective_size}")
        if self.basis_type == "B" and (self.mult <= 1 or self.max_order < 0):
            raise ValueError(f"basis B needs mult > 1 and max_order >= 0, got {self}")


def num_functions(spec: BasisSpec) -> int:
    """eff^2: the number of basis functions (each carries one weight per channel pair)."""
    return spec.effective_size**2


def support_sizes(kernel_size: int, scales: list[float]) -> list[int]:
    """n_i = 2 * floor(floor(K * sigma_i / sigma_max) / 2) + 1 for each scale, at least 3.

    The floor of 3 only acts when sigma_max / sigma_i > K / 2 (SESN asserts it never happens):
    on one sample every odd order vanishes and the normalisation would divide by zero, which a
    learnable scale drifting apart must not turn into a crash.
    """
    top = max(scales)
    return [max(2 * (int(kernel_size * s / top) // 2) + 1, 3) for s in scales]


def hermite_functions_1d(x: Tensor, sigma: Tensor, max_order: int) -> Tensor:
    """psi_{sigma,k}(x) for k = 0..max_order: shape (*sigma.shape, max_order + 1, len(x)).

    ``He_0 = 1, He_1 = t, He_{k+1} = t He_k - k He_{k-1}`` with t = x / sigma.
    """
    t = x / sigma[..., None]
    envelope = torch.exp(-0.5 * t * t) / sigma[..., None]
    polys = [torch.ones_like(t)]
    if max_order >= 1:
        polys.append(t)
    for k in range(1, max_order):
        polys.append(t * polys[k] - k * polys[k - 1])
    return torch.stack(polys, dim=-2) * envelope[..., None, :]


def _order_pairs(spec: BasisSpec) -> tuple[list[int], list[int], int]:
    """(kx, ky) of the functions at one sub-scale, and the number of sub-scales."""
    if spec.basis_type == "A":
        top = spec.effective_size - 1
        pairs = [(i, j) for i in range(top + 1) for j in range(top + 1)]
        sub_scales = 1
    else:
        top = spec.max_order
        pairs = [(i, j) for i in range(top + 1) for j in range(top + 1) if i + j <= top]
        sub_scales = -(-num_functions(spec) // len(pairs))
    return [p[1] for p in pairs], [p[0] for p in pairs], sub_scales


def _sampled(scales: Tensor, spec: BasisSpec, size: int) -> Tensor:
    """All functions of all scales on a common ``size``-point support: (F, S, size, size)."""
    kx, ky, sub = _order_pairs(spec)
    top = max(max(kx), max(ky))
    x = torch.arange(size, dtype=scales.dtype, device=scales.device) - size // 2
    if spec.basis_type == "B":
        shrink = spec.mult ** -torch.arange(sub, dtype=scales.dtype, device=scales.device)
        sigmas = scales[None, :] * shrink[:, None]  # (sub, S)
    else:
        sigmas = scales[None, :]
    h = hermite_functions_1d(x, sigmas, top)  # (sub, S, orders, size)
    hx, hy = h[:, :, kx], h[:, :, ky]  # (sub, S, P, size)
    grid = hx[..., :, None] * hy[..., None, :]  # (sub, S, P, size, size)
    funcs = grid.permute(0, 2, 1, 3, 4).reshape(-1, scales.shape[0], size, size)
    return funcs[: num_functions(spec)]


def hermite_basis(
    scales: Tensor, kernel_size: int, spec: BasisSpec, *, values: Sequence[float] | None = None
) -> Tensor:
    """The normalised basis (F, S, K, K) of the given scales (1D tensor, ascending or not).

    Differentiable in ``scales``. Each scale's functions are sampled on its own support n_i
    (see :func:`support_sizes`), zero outside it, then every function is divided by the L2 norm
    of its version at the smallest scale. ``values``: the scales as Python floats, if the caller
    has them (they must equal ``scales``): the supports are computed from them instead of
    copying ``scales`` from the device (a synchronisation on a GPU).
    """
    if scales.dim() != 1 or scales.numel() < 1:
        raise ValueError(f"scales must be a non-empty 1D tensor, got shape {tuple(scales.shape)}")
    if kernel_size < 3 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be an odd int >= 3, got {kernel_size}")
    values = [float(s) for s in (scales.detach().cpu() if values is None else values)]
    if len(values) != scales.numel():
        raise ValueError(f"got {len(values)} values for {scales.numel()} scales")
    if min(values) <= 0:
        raise ValueError(f"scales must be > 0, got {values}")
    funcs = _sampled(scales, spec, kernel_size)  # (F, S, K, K) on the full support
    sizes = support_sizes(kernel_size, values)
    centre = kernel_size // 2
    offsets = torch.arange(kernel_size, device=scales.device) - centre
    half = torch.tensor([n // 2 for n in sizes], device=scales.device)
    inside = offsets.abs()[None, :] <= half[:, None]  # (S, K)
    mask = (inside[:, :, None] & inside[:, None, :]).to(funcs.dtype)  # (S, K, K)
    funcs = funcs * mask
    smallest = min(range(len(values)), key=values.__getitem__)
    norm = funcs[:, smallest].square().sum(dim=(-2, -1)).sqrt()  # (F,)
    return funcs / norm[:, None, None, None]
