"""Scale-equivariant pointwise nonlinearity (and max-pool) acting on Fourier spectra.

A pointwise nonlinearity sigma does not commute with ideal down-scaling D_r (it creates high
frequencies). Rahman & Yeh make it commute on a grid of resolutions R = {b, b + s, ...} by
computing each output frequency ring at the resolution where the ring first exists:

    output ring rho = rho-ring of DFT_r( sigma(norm_r(D_r x)) ),  r = min{r in R : (r-1)//2 >= rho}

so every ring a down-scaled input D_r x still has is computed from exactly the same data,
``D_r(NL(x)) == NL(D_r(x))`` for r in R (r <= N). Rings are read on the grid's own kept modes
``|k| <= (r - 1) // 2`` (the Nyquist mode of an even grid is dropped, nothing else), so with
increment 1 ring m comes from r = 2m + 1; the published code took it from 2m + 2 in effect and
dropped a legitimate ring when the increment is larger. With a max-pool of window p the same
holds with the pooled grid ceil(r / p) in place of r.

The grid runs from base_res to its first point >= max_res. An input of size N off the grid
(between the grid points r_lo < N < r_hi) keeps every ring it carries: the rings up to
r_lo's come from the grid points <= N as on the grid, the rest (up to (N - 1) // 2, or the
pooled grid's) from r_hi, on the input up-sampled to r_hi (zero-padded spectrum U). The
layer at N is then ``D_N f(U x)``: the grid layer seen through ideal resampling. An input
larger than the grid's last point gets no rings above that point's.

Off the grid, exactness is impossible, for any rule: the rings f(x) takes from r_hi depend
(through sigma, which mixes frequencies) on the band of x between N's modes and r_hi's, and
D_N x has lost that band. The error is bounded by that band's energy. Without a norm, for
x of size M >= r_hi, sigma L-Lipschitz and a max-pool of window p (p = 1 for none):

    || D_q f(x) - f(D_N x) ||^2  <=  p^2 L^2 E,
    E = sum of |X_k|^2 over the rings kept_modes(N) < max(|ky|, |kx|) <= kept_modes(r_hi)

(spectra with norm "forward", so sums of |X_k|^2 are mean squares; q = ceil(N / p)): the
rings from grid points <= N agree exactly, U D_N x and D_(r_hi) x differ by that band (E),
sigma stretches a difference by at most L, the anti-alias is a projection, and each pooled
cell's max moves by at most the largest of its p^2 differences. An instance norm adds the
change of the statistics (the band's energy changes the variance by E). On the grid E = 0.
Measured against the published layer on its README setup, and the bound, in
tests/test_fourier_offgrid.py and the README.

How the batched nonlinearity works (read this first; details in :mod:`._batched2d`):

1. Schedule (:func:`._grids.schedule`): the resolutions r of the grid, each with the rings it
   brings (those it keeps and no smaller resolution keeps).
2. Coefficients: the real Fourier coefficients of every map are read straight off the input
   spectrum; D_r x of every resolution is then two small matrix products (no FFT).
3. Norm: the per-resolution instance norm comes from the coefficients (mean kept by D_r,
   variance by Parseval), one multiply-add on the maps.
4. sigma on every D_r x at once (resolutions grouped in a few zero-padded size buckets).
5. Rings: only each resolution's new rings are read back (a small DFT per ring frequency) and
   gathered into the output spectrum; the backward retraces these steps by hand.

This module holds the layers, their arguments and the per-resolution norms. The direct method
(:func:`.reference.reference_forward`) is a Python loop with an FFT pair, a norm and sigma per
resolution; the layers compute the same numbers (to round-off, forward and backward) with a few
batched matrix products on all resolutions at once: :mod:`._batched2d` (with a hand-written
backward) and :mod:`._batched1d`, on typed plans (:class:`._batched2d.Plan2d` and its
:class:`._batched2d.Bucket2d` s, :class:`._batched1d.Plan1d`: every matrix and index map a
named field). A plan's matrices are built in float64, cast, and cached on the layer (not in
its ``state_dict``) per (input size, dtype, device); the 2D buckets are shared by every input
size.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from ._batched import Activation
from ._batched1d import Plan1d, forward_1d, plan_1d
from ._batched2d import Bucket2d, Plan2d, bucket_2d, bucket_sizes, forward_2d, plan_2d
from ._grids import Step, grid_resolutions, schedule
from ._layout import from_mode_major, mode_major

__all__ = ["ScaleEqNonlinearity", "ScaleEqNonlinearity1d"]

Normalization = Literal["instance"] | None

_REAL = {torch.complex64: torch.float32, torch.complex128: torch.float64}


# --------------------------------------------------------------------------------------------
# argument checks shared by the 1D and 2D layers


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def _check_args(
    activation: Activation,
    base_res: int,
    max_res: int,
    channels: int | None,
    normalization: str | None,
    increment: int,
    pool_window: int,
) -> None:
    if not callable(activation):
        raise ValueError(f"activation must be callable, got {activation!r}")
    _check_int("base_res", base_res, 2)
    if base_res % 2:
        raise ValueError(f"base_res must be even, got {base_res}")
    _check_int("max_res", max_res, base_res)
    _check_int("increment", increment, 1)
    _check_int("pool_window", pool_window, 1)
    if pool_window > base_res:
        raise ValueError(f"pool_window must be <= base_res={base_res}, got {pool_window}")
    if normalization not in (None, "instance"):
        raise ValueError(f"normalization must be None or 'instance', got {normalization!r}")
    if normalization == "instance" and channels is None:
        raise ValueError("channels is required with normalization='instance'")
    if channels is not None:
        _check_int("channels", channels, 1)


def _check_spectrum(
    spectrum: Tensor, dims: int, base_res: int, channels: int | None, normalization: str | None
) -> int:
    """Validate a (B, C, N[, N]) complex spectrum; returns N."""
    if spectrum.dtype not in _REAL:
        raise ValueError(f"spectrum must be complex64 or complex128, got {spectrum.dtype}")
    if spectrum.dim() != 2 + dims or (dims == 2 and spectrum.shape[-1] != spectrum.shape[-2]):
        want = "(B, C, N, N)" if dims == 2 else "(B, C, N)"
        raise ValueError(f"spectrum must be {want}, got shape {tuple(spectrum.shape)}")
    n = spectrum.shape[-1]
    if n < base_res:
        raise ValueError(f"base_res={base_res} exceeds the input size N={n}")
    if normalization is not None and spectrum.shape[1] != channels:
        raise ValueError(f"spectrum has {spectrum.shape[1]} channels, the norms have {channels}")
    return n


# --------------------------------------------------------------------------------------------
# the layers


Impl = Literal["batched", "loop"]
IMPLS: tuple[str, ...] = ("batched", "loop")


class _ScaleEqBase(nn.Module):
    """Arguments, per-resolution instance norms and the plan cache shared by 1D and 2D."""

    _norm_cls: type[nn.Module] = nn.InstanceNorm2d

    def __init__(
        self,
        activation: Activation,
        base_res: int,
        max_res: int,
        channels: int | None,
        normalization: Normalization,
        increment: int,
        pool_window: int,
        impl: Impl = "batched",
    ) -> None:
        super().__init__()
        _check_args(activation, base_res, max_res, channels, normalization, increment, pool_window)
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        # "batched": the layer's matrix products; "loop": the direct method of .reference
        # (a loop over resolutions: slow, for trying a variant of the definition in a model)
        self.impl = impl
        self.activation = activation
        self.base_res = base_res
        self.max_res = max_res
        self.channels = channels
        self.normalization = normalization
        self.increment = increment
        self.pool_window = pool_window
        self.norms: nn.ModuleDict | None = None
        if normalization == "instance":
            # One norm per resolution that brings rings: the statistics of a map differ between
            # resolutions, and equivariance needs a resolution's own norm wherever its rings are
            # computed. The published code also makes norms for resolutions that bring no ring
            # (2m + 2 after 2m + 1), parameters that can never be trained; we do not.
            self.norms = nn.ModuleDict(
                {
                    str(step.res): self._norm_cls(channels, affine=True)
                    for step in self.full_schedule()
                }
            )
        # plans by (input size, dtype, device), and the 2D buckets they share, by (first
        # step, steps, dtype, device): built on first use in float64, cast, and cached
        self._plans: dict[tuple[int, torch.dtype, torch.device], Plan1d | Plan2d] = {}
        self._buckets: dict[tuple[int, int, torch.dtype, torch.device], Bucket2d] = {}

    @property
    def grid(self) -> range:
        """Every resolution of the grid, up to its first point >= max_res."""
        return grid_resolutions(self.base_res, self.max_res, self.increment)

    def resolutions(self, n: int | None = None) -> list[int]:
        """The grid R = {base_res, base_res + increment, ...} up to max_res (and n if given)."""
        hi = self.max_res if n is None else min(self.max_res, n)
        return list(range(self.base_res, hi + 1, self.increment))

    def schedule(self, n: int) -> list[Step]:
        """The resolutions that bring new output rings for an n-sized input, with their rings."""
        return schedule(n, self.base_res, self.max_res, self.increment, self.pool_window)

    def full_schedule(self) -> list[Step]:
        """The schedule of the whole grid (of its last point): the resolutions that own a norm
        and that the 2D buckets are cut from."""
        return self.schedule(self.grid[-1])

    def extra_repr(self) -> str:
        act = getattr(self.activation, "__name__", repr(self.activation))
        return (
            f"activation={act}, base_res={self.base_res}, max_res={self.max_res}, "
            f"increment={self.increment}, normalization={self.normalization!r}, "
            f"pool_window={self.pool_window}" + (", impl='loop'" if self.impl == "loop" else "")
        )

    def _build_plan(self, n: int, dtype: torch.dtype, device: torch.device) -> Plan1d | Plan2d:
        raise NotImplementedError

    def _plan(self, n: int, dtype: torch.dtype, device: torch.device) -> Plan1d | Plan2d:
        key = (n, dtype, device)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._build_plan(n, dtype, device)
        return plan

    def _norm_params(self, plan: Plan1d | Plan2d) -> tuple[Tensor, Tensor, float] | None:
        """(weight, bias) of the norms of the plan's resolutions, each (R, C), and eps."""
        if self.norms is None:
            return None
        mods = [self.norms[str(s.res)] for s in plan.steps]
        weight = torch.stack([m.weight for m in mods])
        return weight, torch.stack([m.bias for m in mods]), mods[0].eps


class ScaleEqNonlinearity(_ScaleEqBase):
    """Scale-equivariant nonlinearity (optionally with max-pool) on 2D spectra.

    Args:
        activation: pointwise sigma, a pure function (finite on finite inputs, not in place).
        base_res: the smallest resolution b of the grid (even, >= 2); rings 0..b/2 - 1 of the
            output are those of sigma at resolution b.
        max_res: the grid runs up to its first point r_max >= max_res; inputs larger than
            r_max get no rings above (r_max - 1) // 2. Inputs off the grid take their top
            rings from the next grid point (see the module doc: exact on the grid, bounded
            by the band the input lacks off it).
        channels: C, needed for the per-resolution instance norms.
        normalization: "instance" (an ``nn.InstanceNorm2d(C, affine=True)`` per resolution,
            keyed by ``str(r)`` in ``self.norms``) or None.
        increment: step s of the grid R = {b, b + s, ...}; equivariance is exact on R.
        pool_window: p > 1 adds the equivariant max-pool (the published ``scaleEqNonlinMaxp``):
            output N -> ceil(N / p), exact as ``D_{ceil(r/p)}(f(x)) == f(D_r(x))`` for r in R.

    ``forward`` takes the full ``fft2`` (norm "forward") of real maps, complex (B, C, N, N)
    (a non-Hermitian input is read as its real maps, ``Re ifft2``), and returns the full
    spectrum of the output maps, (B, C, M, M) with M = ceil(N / p), exactly Hermitian. Any
    memory layout is accepted; the output is mode-major (``_layout``: (M, M, B, C) in memory,
    what the next convolution computes in), so use ``reshape`` rather than ``view`` on it.
    """

    def __init__(
        self,
        activation: Activation = torch.relu,
        base_res: int = 6,
        max_res: int = 28,
        channels: int | None = None,
        normalization: Normalization = None,
        increment: int = 1,
        pool_window: int = 1,
        impl: Impl = "batched",
    ) -> None:
        super().__init__(
            activation, base_res, max_res, channels, normalization, increment, pool_window, impl
        )

    def output_size(self, n: int) -> int:
        """Samples per axis of the output for an n x n input: ceil(n / pool_window)."""
        return -(-n // self.pool_window)

    def _build_plan(self, n: int, dtype: torch.dtype, device: torch.device) -> Plan2d:
        """The buckets split the full schedule (that of max_res) once, and an input of size n
        uses those its schedule covers (the last one cut short), so every input size shares
        them: only the coefficient reader and the gather map depend on n."""
        full, steps = self.full_schedule(), self.schedule(n)
        buckets, first = [], 0
        for count in bucket_sizes(full):
            if first >= len(steps):
                break
            count = min(count, len(steps) - first)
            key = (first, count, dtype, device)
            if key not in self._buckets:
                self._buckets[key] = bucket_2d(full, first, count, self.pool_window).to(
                    dtype, device
                )
            buckets.append(self._buckets[key])
            first += count
        return plan_2d(n, steps, buckets, self.pool_window, self.norms is not None, dtype, device)

    def forward(self, spectrum: Tensor) -> Tensor:
        n = _check_spectrum(spectrum, 2, self.base_res, self.channels, self.normalization)
        if self.impl == "loop":
            from .reference import reference_forward

            return reference_forward(self, spectrum)
        dtype = _REAL[spectrum.dtype]
        plan = self._plan(n, dtype, spectrum.device)
        assert isinstance(plan, Plan2d)
        B, C, m = spectrum.shape[0], spectrum.shape[1], plan.out_n
        size = plan.chunk_size(dtype.itemsize, spectrum.device, C)  # whole samples per chunk
        flat = mode_major(spectrum).view(n * n, B * C)  # no copy when mode-major already
        out = forward_2d(
            flat, plan, self._norm_params(plan), self.activation, self.pool_window, size
        )
        return from_mode_major(out.view(m * m, B, C), m, m)


class ScaleEqNonlinearity1d(_ScaleEqBase):
    """The 1D version on (B, C, N) spectra (``fft``, norm "forward"); no pooling.

    Same arguments and definition as :class:`ScaleEqNonlinearity` along one axis, with an
    ``nn.InstanceNorm1d(C, affine=True)`` per resolution. A matrix product per stage, size
    bucket and chunk of maps on (maps, R * P); autograd does the backward.
    """

    _norm_cls = nn.InstanceNorm1d

    def __init__(
        self,
        activation: Activation = torch.relu,
        base_res: int = 6,
        max_res: int = 28,
        channels: int | None = None,
        normalization: Normalization = None,
        increment: int = 1,
        impl: Impl = "batched",
    ) -> None:
        super().__init__(activation, base_res, max_res, channels, normalization, increment, 1, impl)

    def _build_plan(self, n: int, dtype: torch.dtype, device: torch.device) -> Plan1d:
        return plan_1d(n, self.schedule(n), self.norms is not None).to(dtype, device)

    def forward(self, spectrum: Tensor) -> Tensor:
        n = _check_spectrum(spectrum, 1, self.base_res, self.channels, self.normalization)
        if self.impl == "loop":
            from .reference import reference_forward_1d

            return reference_forward_1d(self, spectrum)
        dtype = _REAL[spectrum.dtype]
        plan = self._plan(n, dtype, spectrum.device)
        assert isinstance(plan, Plan1d)
        return forward_1d(spectrum, plan, self.activation, self._norm_params(plan))
