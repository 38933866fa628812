"""Localised spectral convolution, 1x1 skip and the scale-consistent head: exact equivariance."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from scale_datasets.ops.fourier import (
    resample,
    resample_1d,
    resample_spectrum,
    resample_spectrum_1d,
)
from scale_eq.fourier.head import ScaleConsistentHead, consistency_loss, head_resolutions
from scale_eq.fourier.reference import reference_head_features
from scale_eq.fourier.spectral_conv import (
    SpectralConv1d,
    SpectralConv2d,
    SpectralConvBlock1d,
    SpectralConvBlock2d,
    SpectralSkip,
)

TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _spec2(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.fft2(x, norm="forward")


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().square().sum() / a.abs().square().sum()).item()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    ("n", "g", "k"), [(28, 28, 5), (28, 28, 7), (27, 16, 5), (20, 28, 5), (17, 9, 4)]
)
def test_conv2d_block_commutes_with_every_downscaling(dtype, n, g, k):
    torch.manual_seed(0)
    block = SpectralConvBlock2d(3, 4, g, k).to(dtype)
    x = torch.randn(2, 3, n, n, generator=_gen(n), dtype=dtype)
    with torch.no_grad():
        full = block(_spec2(x))
        for r in range(1, n + 1):
            small = block(_spec2(resample(x, r)))
            # compared on the modes below r's Nyquist (D_r of both sides)
            assert _rel_err(resample_spectrum(full, r), resample_spectrum(small, r)) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_conv1d_block_commutes_with_every_downscaling(dtype):
    torch.manual_seed(1)
    block = SpectralConvBlock1d(2, 3, 64, 9).to(dtype)
    x = torch.randn(3, 2, 90, generator=_gen(2), dtype=dtype)
    spec = torch.fft.fft(x, norm="forward")
    with torch.no_grad():
        full = block(spec)
        for r in range(1, 91):
            small = block(torch.fft.fft(resample_1d(x, r), norm="forward"))
            err = _rel_err(resample_spectrum_1d(full, r), resample_spectrum_1d(small, r))
            assert err <= TOL[dtype]


def test_conv2d_handles_rectangular_maps():
    conv = SpectralConv2d(1, 2, 12, 3).double()
    x = torch.randn(1, 1, 20, 9, generator=_gen(3), dtype=torch.float64)
    with torch.no_grad():
        full = conv(_spec2(x))
        small = conv(_spec2(resample(x, (7, 5))))
    assert full.shape == (1, 2, 20, 9)
    assert _rel_err(resample_spectrum(full, (7, 5)), small) < 1e-20


def test_conv2d_is_a_circular_convolution_on_the_canonical_grid():
    """On a G x G input the layer is the circular convolution with its kernel (minus Nyquist)."""
    g = 12
    conv = SpectralConv2d(2, 3, g, 5).double()
    x = torch.randn(2, 2, g, g, generator=_gen(4), dtype=torch.float64)
    with torch.no_grad():
        y = torch.fft.ifft2(conv(_spec2(x)), norm="forward").real
        kernel = conv.spatial_kernel()
    # direct circular convolution: y[o] = sum_i sum_t k[o, i, t] x[i, . - t]
    ref = torch.zeros(2, 3, g, g, dtype=torch.float64)
    for a in range(g):
        for b in range(g):
            shifted = torch.roll(x, shifts=(a, b), dims=(-2, -1))
            ref += torch.einsum("oi,bihw->bohw", kernel[:, :, a, b], shifted)
    ref = resample(resample(ref, g - 1), g)  # the layer passes |k| <= (G - 1) // 2 only
    assert torch.allclose(y, ref, atol=1e-12)
    # the kernel is centred at the origin: the taps sit at offsets -2..2 (mod G)
    support = kernel.abs().sum((0, 1)) > 0
    assert support.sum() == 25 and support[0, 0] and support[-2, -2] and support[2, 2]


def test_conv1d_is_a_circular_convolution_on_the_canonical_grid():
    g = 15
    conv = SpectralConv1d(1, 2, g, 4).double()
    x = torch.randn(3, 1, g, generator=_gen(5), dtype=torch.float64)
    with torch.no_grad():
        y = torch.fft.ifft(conv(torch.fft.fft(x, norm="forward")), norm="forward").real
        kernel = conv.spatial_kernel()
    ref = sum(
        torch.einsum("oi,bil->bol", kernel[:, :, a], torch.roll(x, a, dims=-1)) for a in range(g)
    )
    assert torch.allclose(y, ref, atol=1e-12)  # odd G: no Nyquist to drop


def test_spectra_of_real_maps_stay_spectra_of_real_maps():
    block = SpectralConvBlock2d(2, 2, 10, 3).double()
    x = torch.randn(1, 2, 16, 16, generator=_gen(6), dtype=torch.float64)
    with torch.no_grad():
        y = torch.fft.ifft2(block(_spec2(x)), norm="forward")
    assert y.imag.abs().max() < 1e-14


def test_modes_above_the_canonical_grid_are_zero_and_skip_passes_everything():
    conv = SpectralConv2d(1, 1, 8, 3).double()
    x = _spec2(torch.randn(1, 1, 28, 28, generator=_gen(7), dtype=torch.float64))
    with torch.no_grad():
        y = conv(x)
    m = (8 - 1) // 2
    assert torch.equal(y, resample_spectrum(resample_spectrum(y, 2 * m + 1), 28))
    assert y[..., m + 1 : 28 - m, :].abs().max() == 0
    skip = SpectralSkip(1, 2).double()
    with torch.no_grad():
        z = skip(x)
    assert torch.allclose(z, skip.weight[None, :, :, None, None].squeeze(-3) * x)


def test_every_kernel_tap_and_skip_weight_gets_gradient():
    block = SpectralConvBlock2d(3, 4, 28, 5)
    x = torch.randn(2, 3, 20, 20, generator=_gen(8))
    out = block(_spec2(x))
    torch.fft.ifft2(out, norm="forward").real.square().sum().backward()
    assert block.conv.weight.grad is not None and (block.conv.weight.grad != 0).all()
    assert block.skip.weight.grad is not None and (block.skip.weight.grad != 0).all()
    assert block.conv.weight.grad.dtype == torch.float32  # real parameters, real gradients


def test_gradient_matches_finite_differences():
    conv = SpectralConv2d(1, 1, 9, 3).double()
    x = _spec2(torch.randn(1, 1, 11, 11, generator=_gen(9), dtype=torch.float64))

    def loss() -> torch.Tensor:
        return torch.fft.ifft2(conv(x), norm="forward").real.pow(3).sum()

    loss().backward()
    grad = conv.weight.grad[0, 0, 1, 2].item()
    eps = 1e-6
    with torch.no_grad():
        conv.weight[0, 0, 1, 2] += eps
        up = loss().item()
        conv.weight[0, 0, 1, 2] -= 2 * eps
        down = loss().item()
    assert grad == pytest.approx((up - down) / (2 * eps), rel=1e-6)


def test_init_keeps_the_energy_of_passed_modes():
    torch.manual_seed(10)
    conv = SpectralConv2d(64, 64, 28, 5)
    x = _spec2(torch.randn(8, 64, 28, 28, generator=_gen(10)))
    with torch.no_grad():
        y = conv(x)
    ratio = (y.abs().square().mean() / resample_spectrum(x, 27).abs().square().mean()).item()
    assert 0.6 < ratio * (28 / 27) ** 2 < 1.6


def test_kernel_cache_is_used_outside_autograd_and_refreshed_on_updates():
    conv = SpectralConv2d(2, 2, 12, 3)
    x = _spec2(torch.randn(1, 2, 12, 12, generator=_gen(11)))
    with torch.no_grad():
        k1 = conv.kernel_spectrum()
        assert conv.kernel_spectrum().data_ptr() == k1.data_ptr()  # cached
        y1 = conv(x)
    # an optimiser step changes the weight in place: the cache must notice
    conv(x).abs().sum().backward()
    with torch.no_grad():
        conv.weight.sub_(0.1 * conv.weight.grad)  # what SGD.step does
    with torch.no_grad():
        k2 = conv.kernel_spectrum()
        y2 = conv(x)
    assert not torch.allclose(k1, k2) and not torch.allclose(y1, y2)
    assert torch.allclose(y2, conv(x).detach())  # fresh autograd path gives the same numbers
    # per dtype: a complex128 input gets a complex128 kernel, and a .double() copy recomputes
    with torch.no_grad():
        assert conv.kernel_spectrum(torch.float64).dtype == torch.complex128
        conv64 = copy.deepcopy(conv).double()
        y64 = conv64(x.to(torch.complex128))
    assert torch.allclose(y64.to(torch.complex64), y2, atol=1e-5)
    # load_state_dict copies in place: cache refreshed
    other = SpectralConv2d(2, 2, 12, 3)
    conv.load_state_dict(other.state_dict())
    with torch.no_grad():
        assert torch.allclose(conv(x), other(x))


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError):
        SpectralConv2d(1, 1, 5, 7)  # kernel larger than the grid
    with pytest.raises(ValueError):
        SpectralConv2d(1, 1, 0, 1)
    conv = SpectralConv2d(2, 1, 8, 3)
    with pytest.raises(ValueError):
        conv(torch.randn(1, 2, 8, 8))  # real input
    with pytest.raises(ValueError):
        conv(torch.randn(1, 3, 8, 8, dtype=torch.complex64))  # wrong channels


# ----------------------------------------------------------------------------- head


def test_head_resolutions():
    assert head_resolutions(12, 8) == [8, 9, 10, 11, 12]
    assert head_resolutions(25, 10, 2) == [10, 12, 14, 16, 18, 20, 22, 24, 25]
    assert head_resolutions(24, 10, 2) == [10, 12, 14, 16, 18, 20, 22, 24]
    assert head_resolutions(8, 8) == [8] and head_resolutions(5, 8) == [5]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    ("n", "base", "inc", "grid", "pool"),
    [(28, 8, 1, 28, 14), (25, 10, 2, 25, 13), (30, 4, 3, 16, 5)],
)
def test_head_logits_of_a_downscaled_input_equal_the_full_inputs_entry(
    dtype, n, base, inc, grid, pool
):
    torch.manual_seed(12)
    head = ScaleConsistentHead(5, 16, 7, base, increment=inc, grid_size=grid, pool_window=pool)
    head = head.to(dtype).eval()
    f = _spec2(torch.randn(3, 5, n, n, generator=_gen(13), dtype=dtype))
    with torch.no_grad():
        full = head(f)
        resolutions = head.resolutions(n)
        assert full.shape == (3, len(resolutions), 7)
        for j, r in enumerate(resolutions):
            small = head(resample_spectrum(f, r))
            assert small.shape[1] == len(head.resolutions(r))
            assert (small[:, -1] - full[:, j]).abs().max() <= TOL[dtype]


def test_head_1d_is_consistent_too():
    head = ScaleConsistentHead(3, 8, 4, 16, grid_size=64, pool_window=16, dims=1).double().eval()
    f = torch.fft.fft(
        torch.randn(2, 3, 64, generator=_gen(14), dtype=torch.float64), norm="forward"
    )
    with torch.no_grad():
        full = head(f)
        for j, r in enumerate(head.resolutions(64)):
            assert torch.allclose(head(resample_spectrum_1d(f, r))[:, -1], full[:, j], atol=1e-12)
    assert head.num_features == 3 * 4


def test_head_features_are_the_pooled_band_limited_map():
    """The MNIST setting: each crop interpolated onto 28 x 28 and max-pooled to 2 x 2."""
    head = ScaleConsistentHead(2, 8, 3, 8, grid_size=28, pool_window=14).double()
    x = torch.randn(1, 2, 20, 20, generator=_gen(15), dtype=torch.float64)
    feats = head.features(_spec2(x))
    assert feats.shape == (1, 13, 2 * 2 * 2)
    expected = F.max_pool2d(resample(resample(x, 11), 28), 14).flatten(1)
    assert torch.allclose(feats[:, 11 - 8], expected, atol=1e-12)


@pytest.mark.parametrize(
    ("dims", "n", "grid", "pool", "base"),
    [
        (2, 28, 28, 14, 8),
        (2, 20, 28, 14, 8),
        (2, 33, 28, 10, 8),
        (2, 25, 25, 13, 10),
        (1, 64, 64, 16, 16),
        (1, 50, 64, 12, 16),
    ],
)
def test_batched_head_features_equal_the_per_resolution_loop(dims, n, grid, pool, base):
    """One GEMM pair for all crops == mask + inverse FFT + max-pool per resolution, forward and
    backward (inputs smaller and larger than the grid, pools that do not divide it)."""
    head = ScaleConsistentHead(5, 8, 3, base, grid_size=grid, pool_window=pool, dims=dims)
    head = head.double()
    x = torch.randn(4, 5, *[n] * dims, generator=_gen(17), dtype=torch.float64)
    x.requires_grad_(True)
    spectrum = torch.fft.fftn(x, dim=tuple(range(-dims, 0)), norm="forward")
    ours, loop = head.features(spectrum), reference_head_features(head, spectrum)
    assert ours.shape == loop.shape == (4, len(head.resolutions(n)), head.num_features)
    assert (ours - loop).abs().max() <= 1e-12
    probe = torch.randn(ours.shape, generator=_gen(18), dtype=torch.float64)
    (g_ours,) = torch.autograd.grad((ours * probe).sum(), x)
    (g_loop,) = torch.autograd.grad((loop * probe).sum(), x)
    assert (g_ours - g_loop).abs().max() <= 1e-12


def test_head_rejects_a_wrong_channel_count():
    head = ScaleConsistentHead(5, 8, 3, 8)
    with pytest.raises(ValueError, match="expects 5 channels, got 4"):
        head(torch.zeros(1, 4, 28, 28, dtype=torch.complex64))


def test_consistency_loss():
    logits = torch.randn(6, 4, 5, generator=_gen(16), requires_grad=True)
    target = torch.tensor([0, 1, 2, 3, 4, 0])
    ce = [F.cross_entropy(logits[:, j], target) for j in range(4)]
    expected = sum(ce) + 0.001 * sum(max(ce[j] - ce[j - 1], 0) for j in range(1, 4))
    loss = consistency_loss(logits, target)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert logits.grad is not None
    one = consistency_loss(logits[:, :1], target)
    assert one.item() == pytest.approx(ce[0].item(), rel=1e-6)


def test_kernel_spectrum_is_indexed_out_channel_first():
    conv2, conv1 = SpectralConv2d(2, 3, 9, 3), SpectralConv1d(2, 3, 9, 3)
    assert conv2.kernel_spectrum().shape == (3, 2, 9, 9)
    assert conv1.kernel_spectrum().shape == (3, 2, 9)
    # the zero mode is the kernel's sum: K[o, i, 0] = sum of weight[o, i]
    assert torch.allclose(conv2.kernel_spectrum()[:, :, 0, 0].real, conv2.weight.sum((2, 3)))
    assert torch.allclose(conv1.kernel_spectrum()[:, :, 0].real, conv1.weight.sum(2))
