"""The scale-equivariant nonlinearity at input sizes off its resolution grid.

An input of size N between two grid points keeps every ring it carries: rings up to the largest
grid point <= N come from the grid as on it, the rest from the next grid point r > N on the
input up-sampled to r. Tested against the definition (``reference_forward``, which follows the
same schedule), against the definition written out here (the top rings equal those of
sigma(U_r x)), and against ideal down-scaling with two testers: our D_r, and the published
package's own tester (written out below from its definition). The thresholds are the published
layer's errors measured on the same setups (issue 14); the error bound off the grid is checked
with the band energy it is stated in.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from scale_datasets.ops.fourier import (
    kept_modes,
    resample,
    resample_1d,
    resample_spectrum,
    resample_spectrum_1d,
)
from scale_eq.fourier._grids import grid_resolutions, schedule
from scale_eq.fourier.nonlinearity import ScaleEqNonlinearity, ScaleEqNonlinearity1d
from scale_eq.fourier.reference import reference_forward
from scale_eq.fourier.spectral_conv import SpectralConv2d

F64 = torch.float64
SIZES = [112, 80, 48]  # the input sizes: 112 and 80 are off the grid 32, 64, 96, 128


def _maps(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _ring_mask(n: int, lo: int, hi: int) -> torch.Tensor:
    k = torch.fft.fftfreq(n, 1.0 / n).abs()
    ring = torch.maximum(k[:, None], k[None, :])
    return (ring >= lo) & (ring <= hi)


# ------------------------------------------------------------------------------ the schedule


def test_the_grid_runs_to_its_first_point_at_or_above_max_res():
    assert list(grid_resolutions(40, 97, 8)) == [40, 48, 56, 64, 72, 80, 88, 96, 104]
    assert list(grid_resolutions(6, 28, 1)) == list(range(6, 29))
    assert list(grid_resolutions(32, 128, 32)) == [32, 64, 96, 128]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(4, 60),
    st.sampled_from([2, 4, 6, 8]),
    st.integers(1, 9),
    st.sampled_from([1, 2, 3]),
    st.integers(0, 40),
)
def test_the_schedule_covers_every_ring_the_output_keeps_once(n, base, inc, pool, extra):
    max_res = base + extra
    n = max(n, base)
    steps = schedule(n, base, max_res, inc, pool)
    grid = list(grid_resolutions(base, max_res, inc))
    top = kept_modes(math.ceil(min(n, grid[-1]) / pool))
    assert steps[0].lo == 0 and steps[-1].hi == top
    for a, b in itertools.pairwise(steps):
        assert b.lo == a.hi + 1 and b.res > a.res
    assert all(s.res in grid for s in steps)
    assert all(s.res <= n for s in steps[:-1])  # only the last step may lie above N


# -------------------------------------------------------------------- the rule, from its text


@pytest.mark.parametrize(("n", "pool"), [(27, 1), (25, 1), (26, 2), (28, 3)])
def test_the_top_rings_are_those_of_sigma_on_the_input_up_sampled_to_the_next_grid_point(n, pool):
    layer = ScaleEqNonlinearity(torch.tanh, base_res=6, max_res=30, increment=8, pool_window=pool)
    x = _maps((2, 3, n, n), n)
    last = layer.schedule(n)[-1]
    assert last.res == 30 > n
    with torch.no_grad():
        out = layer(torch.fft.fft2(x, norm="forward"))
        y = torch.tanh(resample(x, 30))
        if pool > 1:  # anti-alias to the pooled grid, then max-pool
            y = resample(resample(y, last.grid), 30)
            y = F.max_pool2d(y, pool, pool, ceil_mode=True)
        want = torch.fft.fft2(y, norm="forward")
    m = out.shape[-1]
    mask = _ring_mask(m, last.lo, last.hi)
    mask_up = _ring_mask(want.shape[-1], last.lo, last.hi)
    assert last.hi == kept_modes(m) and mask.sum() == mask_up.sum() > 0
    got, ref = out[..., mask], want[..., mask_up]
    # the same modes in the same (ky, kx) order on both grids
    k, ku = torch.fft.fftfreq(m, 1.0 / m), torch.fft.fftfreq(want.shape[-1], 1.0 / want.shape[-1])
    order = torch.stack(torch.meshgrid(k, k, indexing="ij"), -1)[mask]
    order_up = torch.stack(torch.meshgrid(ku, ku, indexing="ij"), -1)[mask_up]
    assert torch.equal(order, order_up)
    assert (got - ref).abs().max() <= 1e-12
    outside = ~_ring_mask(m, 0, kept_modes(m))  # an even grid's Nyquist line: nothing there
    assert outside.any() == (m % 2 == 0) and not out[..., outside].abs().any()


def test_1d_top_modes_come_from_the_next_grid_point():
    layer = ScaleEqNonlinearity1d(torch.tanh, base_res=8, max_res=40, increment=8)
    x = _maps((2, 3, 37), 1)
    with torch.no_grad():
        out = layer(torch.fft.fft(x, norm="forward"))
        want = torch.fft.fft(torch.tanh(resample_1d(x, 40)), norm="forward")
    k = torch.arange(16, 19)  # rings 16..18: above the grid point 32's 15, below 37's 18
    assert (out[..., k] - want[..., k]).abs().max() <= 1e-12
    assert (out[..., -k] - want[..., -k]).abs().max() <= 1e-12
    assert out[..., k].abs().min() > 0


def test_on_the_grid_nothing_above_n_is_used():
    """An input on the grid never reaches the next grid point: no up-sampling, as before."""
    for n in (32, 64, 96, 128):
        assert schedule(n, 32, 128, 32)[-1].res == n


# ------------------------------------------------------------------------- the two testers


def _published_real_resample(x: torch.Tensor, num: int) -> torch.Tensor:
    """The published tester's input down-scaling (its ``resample(x, num, complex=False)``):
    rfft2, keep rows :num//2 (:num//2 + 1 for odd num) and the last num//2, columns
    :num//2 + 1, irfft2 on num x num (an even num keeps half of the Nyquist line)."""
    spec = torch.fft.rfft2(x, norm="forward")
    out = spec.new_zeros(*spec.shape[:-2], num, num // 2 + 1)
    en = min(num // 2, x.shape[-1] // 2)
    top = en if num % 2 == 0 else en + 1
    out[..., :top, : en + 1] = spec[..., :top, : en + 1]
    out[..., -en:, : en + 1] = spec[..., -en:, : en + 1]
    return torch.fft.irfft2(out, s=(num, num), norm="forward")


def _published_feature_crop(f: torch.Tensor, num: int) -> torch.Tensor:
    """Its feature down-scaling (``resample(f, num, complex=True, skip_nyq=True)``)."""
    spec = torch.fft.fft2(f, norm="forward")
    out = spec.new_zeros(*spec.shape[:-2], num, num)
    en = min(num // 2, f.shape[-1] // 2)
    for rows in (slice(0, en), slice(-en, None)):
        for cols in (slice(0, en), slice(-en, None)):
            out[..., rows, cols] = spec[..., rows, cols]
    out[..., -en, :] = 0
    out[..., :, -en] = 0
    return torch.fft.ifft2(out, norm="forward")


def _maps_of(layer, img: torch.Tensor) -> torch.Tensor:
    return torch.fft.ifft2(layer(torch.fft.fft2(img, norm="forward")), norm="forward").real


def published_tester(layer, img: torch.Tensor, sizes: list[int]) -> float:
    """The published tester: per sample, sum over the smaller sizes of ||a - b||^2 /
    (||a||^2 + 1e-6) averaged over channels, divided by the number of sizes; mean over
    samples."""
    sizes = sorted(sizes, reverse=True)
    high = _maps_of(layer, img)
    total = torch.zeros(img.shape[0], dtype=F64)
    for r in sizes[1:]:
        low = _maps_of(layer, _published_real_resample(img, r))
        m = low.shape[-1]
        a, b = _published_feature_crop(high, m), _published_feature_crop(low, m)
        err = (a - b).abs().square().sum((-1, -2)) / (a.abs().square().sum((-1, -2)) + 1e-6)
        total += err.mean(1)
    return (total / len(sizes)).mean().item()


def independent_tester(layer, img: torch.Tensor, sizes: list[int], pool: int) -> float:
    """Our D_r (keep |k| <= (min(N, r) - 1) // 2): mean over the smaller sizes r of
    ||D_(r/p) f(x) - f(D_r x)||^2 / ||D_(r/p) f(x)||^2, per sample and channel, averaged."""
    sizes = sorted(sizes, reverse=True)
    spec = torch.fft.fft2(img, norm="forward")
    full = layer(spec)
    errs = []
    for r in sizes[1:]:
        a = resample_spectrum(full, math.ceil(r / pool))
        b = layer(resample_spectrum(spec, r))
        err = (a - b).abs().square().sum((-1, -2)) / a.abs().square().sum((-1, -2))
        errs.append(err.mean().item())
    return sum(errs) / len(errs)


def _pooled_sigmoid() -> ScaleEqNonlinearity:
    """The published README's nonlinearity: sigmoid, base 32, max 128, increment 32, pool 2."""
    return ScaleEqNonlinearity(
        torch.sigmoid, base_res=32, max_res=128, increment=32, pool_window=2
    ).double()


def _readme_setup() -> torch.nn.Module:
    """The published README's pair: conv 3 -> 32 (global 28, local 7), then the pooled
    sigmoid."""
    torch.manual_seed(0)
    return torch.nn.Sequential(SpectralConv2d(3, 32, 28, 7, dtype=F64), _pooled_sigmoid())


# The published layer's errors on these setups at sizes 112 / 80 / 48 (issue 14's table).
PUBLISHED = {
    ("readme", "published"): 7.5e-14,
    ("readme", "independent"): 1.6e-4,
    ("alone", "published"): 2.2e-5,
    ("alone", "independent"): 5.5e-4,
}


@pytest.mark.parametrize("setup", ["readme", "alone"])
def test_off_the_grid_at_least_as_close_as_the_published_layer(setup):
    layer = _readme_setup() if setup == "readme" else _pooled_sigmoid()
    img = _maps((4, 3 if setup == "readme" else 32, 112, 112), 7)
    with torch.no_grad():
        published = published_tester(layer, img, SIZES)
        independent = independent_tester(layer, img, SIZES, pool=2)
    assert independent <= PUBLISHED[(setup, "independent")]
    if setup == "readme":
        # the conv leaves only modes < 14, which every grid point keeps: exact off the grid
        assert published <= PUBLISHED[(setup, "published")] and independent <= 1e-20
    else:
        # white noise fills the band between 80 and 96 that the 80-sized input lacks, so the
        # rings from 96 differ (the bound below). Within 5% of the published layer's error
        # under its tester, whose even-sized inputs keep half their Nyquist line: the
        # published layer takes half of each step's first ring from the previous grid's
        # Nyquist row and reads the input's Nyquist line; ours, like D_r, reads none
        # (benchmarks/offgrid_equivariance.py has the ablation)
        assert published <= 1.05 * PUBLISHED[(setup, "published")]
        assert independent <= 0.1 * PUBLISHED[(setup, "independent")]


def test_on_the_grid_both_testers_see_exactness():
    layer = _pooled_sigmoid()
    img = _maps((1, 16, 128, 128), 3)
    with torch.no_grad():
        assert independent_tester(layer, img, [128, 96, 64], pool=2) <= 1e-26
        assert published_tester(layer, img, [128, 96, 64]) <= 1e-26


# --------------------------------------------------------------------------------- the bound


@pytest.mark.parametrize(
    ("act", "lipschitz", "pool", "n"),
    [(torch.sigmoid, 0.25, 2, 80), (torch.relu, 1.0, 1, 80), (torch.tanh, 1.0, 3, 70)],
)
def test_off_grid_error_is_within_the_stated_bound(act, lipschitz, pool, n):
    """||D_q f(x) - f(D_n x)||^2 <= p^2 L^2 E, E the energy of x in the rings n's grid lacks
    below the next grid point r (kept_modes(n) < ring <= kept_modes(r)): the rings from grid
    points <= n are exact, and sigma (L-Lipschitz), the anti-alias (a projection) and the
    max-pool (at most p^2 samples per cell) stretch the input's difference by at most that."""
    layer = ScaleEqNonlinearity(act, base_res=32, max_res=128, increment=32, pool_window=pool)
    layer = layer.double()
    spec = torch.fft.fft2(_maps((2, 4, 128, 128), 11), norm="forward")
    r = layer.schedule(n)[-1].res
    assert r > n
    energy = (spec.abs().square() * _ring_mask(128, kept_modes(n) + 1, kept_modes(r))).sum((-1, -2))
    with torch.no_grad():
        q = math.ceil(n / pool)
        diff = resample_spectrum(layer(spec), q) - layer(resample_spectrum(spec, n))
    err = diff.abs().square().sum((-1, -2))
    assert (err > 0).all()
    assert (err <= pool**2 * lipschitz**2 * energy).all()


def test_batched_equals_the_definition_off_the_grid_with_gradients():
    layer = ScaleEqNonlinearity(
        torch.relu, 32, 128, channels=3, normalization="instance", increment=32, pool_window=2
    ).double()
    x = _maps((2, 3, 80, 80), 5).requires_grad_()
    probe = torch.complex(_maps((2, 3, 40, 40), 1), _maps((2, 3, 40, 40), 2))
    grads = []
    for fn in (layer, lambda s: reference_forward(layer, s)):
        out = fn(torch.fft.fft2(x, norm="forward"))
        (gx,) = torch.autograd.grad((out * probe.conj()).real.sum(), x)
        grads.append((out.detach(), gx))
    (a, ga), (b, gb) = grads
    assert (a - b).abs().max() <= 1e-12 and (ga - gb).abs().max() <= 1e-12
    assert layer.norms is not None and "96" in layer.norms  # the up-sampled step's own norm


def test_1d_off_grid_equivariance_error_is_small_and_not_zero():
    layer = ScaleEqNonlinearity1d(torch.sigmoid, base_res=32, max_res=128, increment=32).double()
    spec = torch.fft.fft(_maps((4, 8, 112), 9), norm="forward")
    with torch.no_grad():
        a = resample_spectrum_1d(layer(spec), 80)
        b = layer(resample_spectrum_1d(spec, 80))
    err = ((a - b).abs().square().sum(-1) / a.abs().square().sum(-1)).mean().item()
    assert 0 < err <= 1e-3
