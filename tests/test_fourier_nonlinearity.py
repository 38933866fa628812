"""Scale-equivariant nonlinearity (Rahman & Yeh): batched layer == definition, equivariance.

The batched layer must give the loop over resolutions (``reference_forward``, written from the
definition) to round-off, values and gradients; be exactly equivariant to ideal down-scaling on
its grid of resolutions; return Hermitian spectra; and take ring m from r = 2m + 1, not from
the published code's 2m + 2.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import scale_eq.fourier._batched1d as batched1d
import scale_eq.fourier._batched2d as batched2d
from scale_datasets.ops.fourier import (
    resample,
    resample_1d,
    resample_spectrum,
    resample_spectrum_1d,
)
from scale_eq.fourier._grids import analysis_matrix, partition, resample_matrix, synthesis_matrix
from scale_eq.fourier.nonlinearity import ScaleEqNonlinearity, ScaleEqNonlinearity1d
from scale_eq.fourier.reference import reference_forward, reference_forward_1d

F64 = torch.float64


def _layer(n_channels: int = 3, dtype: torch.dtype = F64, seed: int = 0, **kw) -> torch.nn.Module:
    """A 2D (or, with dims=1, 1D) layer with random norm affines, so they are not identity."""
    dims = kw.pop("dims", 2)
    cls = ScaleEqNonlinearity1d if dims == 1 else ScaleEqNonlinearity
    layer = cls(channels=n_channels, **kw).to(dtype)
    if layer.norms is not None:
        g = torch.Generator().manual_seed(seed)
        for norm in layer.norms.values():
            norm.weight.data = torch.randn(n_channels, generator=g, dtype=dtype)
            norm.bias.data = torch.randn(n_channels, generator=g, dtype=dtype)
    return layer


def _maps(shape: tuple[int, ...], seed: int, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _spectrum(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftn(x, dim=tuple(range(2, x.dim())), norm="forward")


def _run(fn, layer: torch.nn.Module, x: torch.Tensor, probe: torch.Tensor):
    """Output and the gradients of <out, probe> w.r.t. the real maps and the norm params."""
    layer.zero_grad()
    x = x.detach().requires_grad_()
    out = fn(_spectrum(x))
    (out * probe.conj()).real.sum().backward()
    params = [p.grad if p.grad is not None else torch.zeros_like(p) for p in layer.parameters()]
    return out.detach(), x.grad, params


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b||^2 / ||b||^2, the scale-equivariance error of PROTOCOLS 6.3."""
    return ((a - b).abs().square().sum() / b.abs().square().sum()).item()


CASES_2D = [
    # n, base, increment, normalization, pool
    (28, 6, 1, "instance", 1),  # the MNIST layer
    (28, 6, 1, None, 1),
    (13, 4, 1, "instance", 1),  # odd N
    (16, 6, 4, "instance", 1),  # increment 4, even N
    (21, 6, 4, None, 1),
    (17, 6, 3, "instance", 1),
    (28, 6, 1, "instance", 2),  # the equivariant max-pool
    (17, 4, 1, None, 2),
    (23, 6, 4, "instance", 2),
    (6, 6, 1, "instance", 1),  # the base resolution only
    (27, 6, 4, "instance", 1),  # off the grid: the top rings from the next grid point, 30
    (26, 8, 8, "instance", 3),  # off the grid, pooled by 3
]


@pytest.mark.parametrize(("n", "base", "inc", "norm", "pool"), CASES_2D)
def test_batched_equals_the_loop_values_and_gradients(n, base, inc, norm, pool):
    layer = _layer(base_res=base, max_res=28, increment=inc, normalization=norm, pool_window=pool)
    x = _maps((2, 3, n, n), seed=n)
    m = layer.output_size(n)
    probe = torch.complex(_maps((2, 3, m, m), 1), _maps((2, 3, m, m), 2))
    out, gx, gp = _run(layer, layer, x, probe)
    ref, rx, rp = _run(lambda s: reference_forward(layer, s), layer, x, probe)
    assert out.shape == (2, 3, m, m) and out.dtype == torch.complex128
    assert (out - ref).abs().max() <= 1e-12
    assert (gx - rx).abs().max() <= 1e-12 * max(1.0, rx.abs().max().item())
    for a, b in zip(gp, rp, strict=True):
        assert (a - b).abs().max() <= 1e-12 * max(1.0, b.abs().max().item())


def test_a_non_hermitian_input_is_read_as_its_real_maps():
    """Both the layer and the loop see Re ifft2(X): same values and complex gradients."""
    layer = _layer(normalization="instance")
    spec = torch.complex(_maps((2, 3, 20, 20), 3), _maps((2, 3, 20, 20), 4)).requires_grad_()
    probe = torch.complex(_maps((2, 3, 20, 20), 5), _maps((2, 3, 20, 20), 6))
    grads = []
    for fn in (layer, lambda s: reference_forward(layer, s)):
        spec.grad = None
        out = fn(spec)
        (out * probe.conj()).real.sum().backward()
        grads.append((out.detach(), spec.grad.clone()))
    (a, ga), (b, gb) = grads
    assert (a - b).abs().max() <= 1e-12 and (ga - gb).abs().max() <= 1e-12


def test_any_gradient_layout_and_a_retained_graph():
    """Expanded output gradients (from a plain sum) and two backward passes through one graph."""
    layer = _layer(normalization="instance")
    grads = []
    for fn in (layer, lambda s: reference_forward(layer, s)):
        x = _maps((2, 3, 14, 14), 4).requires_grad_()
        loss = fn(_spectrum(x)).real.sum()
        loss.backward(retain_graph=True)
        loss.backward()
        grads.append(x.grad)
    assert (grads[0] - grads[1]).abs().max() <= 1e-12


@settings(max_examples=12, deadline=None)
@given(
    st.integers(4, 24),
    st.sampled_from([2, 4, 6]),
    st.integers(1, 5),
    st.sampled_from([None, "instance"]),
    st.sampled_from([1, 2]),
    st.data(),
)
def test_batched_equals_the_loop_hypothesis(n, base, inc, norm, pool, data):
    if n < base:
        n = base
    max_res = data.draw(st.integers(base, 30))
    layer = _layer(
        base_res=base, max_res=max_res, increment=inc, normalization=norm, pool_window=pool
    )
    spec = _spectrum(_maps((1, 3, n, n), n + inc))
    with torch.no_grad():
        assert (layer(spec) - reference_forward(layer, spec)).abs().max() <= 1e-12


@pytest.mark.parametrize("pool", [1, 2])
def test_chunks_and_unrepeated_matrices_do_not_change_the_result(monkeypatch, pool):
    """One sample per chunk, and the per-group products that large plans use instead of
    repeated matrices, give the same values and gradients."""
    layer = _layer(normalization="instance", pool_window=pool)
    x = _maps((4, 3, 28, 28), 7)
    m = layer.output_size(28)
    probe = torch.complex(_maps((4, 3, m, m), 8), _maps((4, 3, m, m), 9))
    whole = _run(layer, layer, x, probe)
    monkeypatch.setattr(batched2d, "_CPU_CHUNK_BYTES", 1)  # one sample per chunk
    monkeypatch.setattr(batched2d, "_REPEATED_BYTES", 0)
    layer._plans.clear()
    layer._buckets.clear()
    chunked = _run(layer, layer, x, probe)
    repeated = ("synthesis_repeated", "lowpass_repeated", "ring_dft_repeated")
    for bucket in layer._buckets.values():
        assert all(getattr(bucket, name) is None for name in (*repeated, "ring_cols_repeated"))
    for a, b in zip(
        [whole[0], whole[1], *whole[2]], [chunked[0], chunked[1], *chunked[2]], strict=True
    ):
        assert (a - b).abs().max() <= 1e-12 * max(1.0, b.abs().max().item())


@pytest.mark.parametrize(("n", "base", "inc", "norm", "pool"), CASES_2D)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_equivariant_to_down_scaling_on_the_grid(n, base, inc, norm, pool, dtype):
    """D_q(NL(x)) == NL(D_r(x)) for every r of the grid up to N, q = ceil(r / p)."""
    layer = _layer(
        dtype=dtype, base_res=base, max_res=28, increment=inc, normalization=norm, pool_window=pool
    )
    spec = _spectrum(_maps((2, 3, n, n), n, dtype))
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    with torch.no_grad():
        full = layer(spec)
        for r in layer.resolutions(n):
            q = math.ceil(r / pool)
            err = _rel_err(layer(resample_spectrum(spec, r)), resample_spectrum(full, q))
            assert err <= tol, (r, err)


def test_not_equivariant_off_the_grid():
    """With increment 4, a resolution between grid points is not exact (as published)."""
    layer = _layer(base_res=6, increment=4)
    spec = _spectrum(_maps((2, 3, 20, 20), 1))
    with torch.no_grad():
        err = _rel_err(layer(resample_spectrum(spec, 12)), resample_spectrum(layer(spec), 12))
    assert err > 1e-6


@pytest.mark.parametrize(("n", "pool"), [(28, 1), (27, 1), (28, 2), (17, 2)])
def test_the_output_is_the_spectrum_of_real_maps(n, pool):
    layer = _layer(normalization="instance", pool_window=pool)
    with torch.no_grad():
        out = layer(_spectrum(_maps((2, 3, n, n), 5)))
    maps = torch.fft.ifft2(out, norm="forward")
    assert maps.imag.abs().max() <= 1e-14 * maps.real.abs().max()
    if out.shape[-1] % 2 == 0:  # nothing at the Nyquist of an even grid
        nyq = out.shape[-1] // 2
        assert out[..., nyq, :].abs().max() == 0 and out[..., :, nyq].abs().max() == 0


def _ring(z: torch.Tensor, m: int) -> torch.Tensor:
    """The modes of ring m of full spectra (.., g, g) as a flat tensor, in a fixed order."""
    k = torch.arange(-m, m + 1)
    kx, ky = torch.meshgrid(k, k, indexing="ij")
    sel = torch.maximum(kx.abs(), ky.abs()) == m
    g = z.shape[-1]
    return z[..., kx[sel] % g, ky[sel] % g]


@pytest.mark.parametrize("m", [3, 5, 9, 13])
def test_ring_m_comes_from_r_2m_plus_1_not_2m_plus_2(m):
    """With increment 1 the published Nyquist handling fills ring m from r = 2m + 2 in effect;
    the definition takes it from the smallest grid that keeps it, r = 2m + 1."""
    layer = _layer(base_res=6, increment=1)
    x = _maps((2, 3, 28, 28), m)
    with torch.no_grad():
        out = layer(_spectrum(x))
    odd = torch.fft.fft2(torch.relu(resample(x, 2 * m + 1)), norm="forward")
    even = torch.fft.fft2(torch.relu(resample(x, 2 * m + 2)), norm="forward")
    assert (_ring(out, m) - _ring(odd, m)).abs().max() <= 1e-12
    assert (_ring(out, m) - _ring(even, m)).abs().max() > 1e-3


def test_every_ring_the_input_carries_is_filled_and_no_other():
    """Published bug: with increment > 1 a legitimate ring was dropped. On the grid
    6, 10, ..., 26, 30 and N = 28 every ring up to (28 - 1) // 2 = 13 is filled: rings up to
    12 from the grid points <= 28, ring 13 from the next grid point 30, on the input
    up-sampled to 30 (see test_fourier_offgrid for the rest of the off-grid rule)."""
    layer = _layer(base_res=6, increment=4)
    x = _maps((2, 3, 28, 28), 2)
    with torch.no_grad():
        out = layer(_spectrum(x))
        up = torch.fft.fft2(torch.relu(resample(x, 30)), norm="forward")
    for m in range(14):
        assert _ring(out, m).abs().min() > 0, m
    assert (_ring(out, 13) - _ring(up, 13)).abs().max() <= 1e-12
    # N above the grid's last point (max_res 28 with increment 1): rings stop at 13
    layer = _layer(base_res=6, increment=1, max_res=28)
    with torch.no_grad():
        out = layer(_spectrum(_maps((2, 3, 29, 29), 2)))
    assert _ring(out, 13).abs().min() > 0
    assert _ring(out, 14).abs().max() == 0


def test_instance_norm_is_the_resolutions_own():
    """The base rings are sigma(InstanceNorm2d_b(D_b x)) exactly, with the module of str(b)."""
    layer = _layer(normalization="instance")
    # only resolutions that bring rings own a norm: the base, then every odd r (2m + 2 adds none)
    assert sorted(int(k) for k in layer.norms) == [6, *range(7, 28, 2)]
    x = _maps((2, 3, 28, 28), 3)
    with torch.no_grad():
        out = layer(_spectrum(x))
        base = torch.fft.fft2(torch.relu(layer.norms["6"](resample(x, 6))), norm="forward")
    for m in range(3):
        assert (_ring(out, m) - _ring(base, m)).abs().max() <= 1e-12


def test_float32_and_state_dict():
    layer = _layer(dtype=torch.float32, normalization="instance", pool_window=2)
    out = layer(_spectrum(_maps((2, 3, 28, 28), 1, torch.float32)))
    assert out.dtype == torch.complex64 and out.shape == (2, 3, 14, 14)
    assert all(k.startswith("norms.") for k in layer.state_dict())  # no plan buffers
    key = (28, torch.float32, torch.device("cpu"))
    plan = layer._plans[key]
    layer(_spectrum(_maps((2, 3, 28, 28), 2, torch.float32)))
    assert layer._plans[key] is plan  # built once, reused
    layer(_spectrum(_maps((2, 3, 20, 20), 2, torch.float32)))
    assert layer._plans[(20, torch.float32, torch.device("cpu"))].buckets[0] is plan.buckets[0]


def test_other_activations_and_no_grad():
    for act in (torch.tanh, F.gelu, F.leaky_relu):
        layer = _layer(activation=act, normalization="instance", base_res=4)
        x = _maps((1, 3, 15, 15), 4)
        probe = torch.complex(_maps((1, 3, 15, 15), 5), _maps((1, 3, 15, 15), 6))
        out, gx, _ = _run(layer, layer, x, probe)
        ref, rx, _ = _run(lambda s, la=layer: reference_forward(la, s), layer, x, probe)
        assert (out - ref).abs().max() <= 1e-12 and (gx - rx).abs().max() <= 1e-12


def test_grid_matrices():
    """The real matrices the layer is built from are D_r itself, and buckets never cost more
    than padding everything to the largest grid."""
    x = _maps((3, 20), 0)
    for r in (1, 6, 7, 13, 20, 31):
        a = resample_matrix(20, r)
        assert (x @ a.T - resample_1d(x, r)).abs().max() <= 1e-13
        m = (min(20, r) - 1) // 2
        assert (synthesis_matrix(r, m) @ analysis_matrix(20, m) - a).abs().max() <= 1e-13
    sizes = [6, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27]
    lengths = partition(sizes, lambda p: p**3, 0.0, 4)
    assert sum(lengths) == len(sizes) and len(lengths) == 4
    assert partition(sizes, lambda p: p**3, 1e9, 4) == [len(sizes)]  # overhead: one bucket


# ------------------------------------------------------------------------------------------- 1D

CASES_1D = [
    (28, 6, 1, "instance"),
    (28, 6, 1, None),
    (13, 4, 3, "instance"),
    (40, 8, 4, None),
    (37, 8, 8, "instance"),  # off the grid: the top modes from 40
    (19, 6, 4, None),
]


@pytest.mark.parametrize(("n", "base", "inc", "norm"), CASES_1D)
def test_1d_batched_equals_the_loop(n, base, inc, norm):
    layer = _layer(dims=1, base_res=base, max_res=40, increment=inc, normalization=norm)
    x = _maps((2, 3, n), n)
    probe = torch.complex(_maps((2, 3, n), 1), _maps((2, 3, n), 2))
    out, gx, gp = _run(layer, layer, x, probe)
    ref, rx, rp = _run(lambda s: reference_forward_1d(layer, s), layer, x, probe)
    assert out.shape == (2, 3, n) and (out - ref).abs().max() <= 1e-12
    assert (gx - rx).abs().max() <= 1e-12
    for a, b in zip(gp, rp, strict=True):
        assert (a - b).abs().max() <= 1e-12 * max(1.0, b.abs().max().item())


@pytest.mark.parametrize("norm", ["instance", None])
def test_1d_buckets_and_chunks_equal_the_loop(monkeypatch, norm):
    """A wide grid (8..128: several buckets) cut into one-sample chunks."""
    monkeypatch.setattr(batched1d, "_CHUNK_BYTES", 1)
    layer = _layer(dims=1, base_res=8, max_res=128, normalization=norm)
    x = _maps((3, 3, 128), 3)
    probe = torch.complex(_maps((3, 3, 128), 4), _maps((3, 3, 128), 5))
    out, gx, gp = _run(layer, layer, x, probe)
    assert len(layer._plans[(128, torch.float64, torch.device("cpu"))].buckets) > 1
    ref, rx, rp = _run(lambda s: reference_forward_1d(layer, s), layer, x, probe)
    assert (out - ref).abs().max() <= 1e-12 and (gx - rx).abs().max() <= 1e-12
    for a, b in zip(gp, rp, strict=True):
        assert (a - b).abs().max() <= 1e-12 * max(1.0, b.abs().max().item())


@pytest.mark.parametrize(("n", "base", "inc", "norm"), CASES_1D)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_1d_equivariant_and_real(n, base, inc, norm, dtype):
    layer = _layer(
        dims=1, dtype=dtype, base_res=base, max_res=40, increment=inc, normalization=norm
    )
    spec = _spectrum(_maps((2, 3, n), n, dtype))
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    with torch.no_grad():
        full = layer(spec)
        assert torch.fft.ifft(full, norm="forward").imag.abs().max() <= 1e-6
        for r in layer.resolutions(n):
            err = _rel_err(layer(resample_spectrum_1d(spec, r)), resample_spectrum_1d(full, r))
            assert err <= tol, (r, err)


# ----------------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(base_res=5), "base_res"),
        (dict(base_res=0), "base_res"),
        (dict(increment=0), "increment"),
        (dict(normalization="batch", channels=3), "normalization"),
        (dict(normalization="instance"), "channels"),
        (dict(max_res=4), "max_res"),
        (dict(pool_window=0), "pool_window"),
        (dict(activation="relu"), "activation"),
    ],
)
@pytest.mark.parametrize("cls", [ScaleEqNonlinearity, ScaleEqNonlinearity1d])
def test_bad_arguments_are_rejected(kwargs, name, cls):
    if cls is ScaleEqNonlinearity1d and "pool_window" in kwargs:
        pytest.skip("no pooling in 1D")
    with pytest.raises(ValueError, match=name):
        cls(**kwargs)


def test_bad_inputs_are_rejected():
    layer = ScaleEqNonlinearity(base_res=8, channels=3, normalization="instance")
    with pytest.raises(ValueError, match="base_res"):
        layer(_spectrum(_maps((1, 3, 6, 6), 0)))  # base_res > N
    with pytest.raises(ValueError, match="complex"):
        layer(_maps((1, 3, 10, 10), 0))
    with pytest.raises(ValueError, match="channels"):
        layer(_spectrum(_maps((1, 4, 10, 10), 0)))
    with pytest.raises(ValueError, match="shape"):
        layer(_spectrum(_maps((1, 3, 10, 12), 0)))
    with pytest.raises(ValueError, match="base_res"):
        ScaleEqNonlinearity1d(base_res=8)(_spectrum(_maps((1, 3, 6), 0)))
