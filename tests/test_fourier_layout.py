"""The mode-major layout of the 2D spectral layers and the coefficient reader behind it.

The layers compute with spectra laid out (H, W, B, C) in memory. That must be invisible: the
same values and gradients whatever layout comes in, and a stack of layers that hands spectra
along without copying them.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scale_datasets.ops.fourier import kept_modes
from scale_eq.fourier._coefficients import (
    ReadCoefficients,
    coefficient_reader,
    real_coefficients,
)
from scale_eq.fourier._grids import analysis_matrix
from scale_eq.fourier._layout import from_mode_major, is_mode_major, mode_major
from scale_eq.fourier.head import ScaleConsistentHead
from scale_eq.fourier.nonlinearity import ScaleEqNonlinearity
from scale_eq.fourier.reference import reference_forward, reference_head_features
from scale_eq.fourier.spectral_conv import SpectralConv2d, SpectralSkip

F64 = torch.float64


def _spectrum(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.fft.fft2(torch.randn(shape, generator=g, dtype=F64), norm="forward")


def _mode_major_copy(x: torch.Tensor) -> torch.Tensor:
    return from_mode_major(mode_major(x).clone(), x.shape[-2], x.shape[-1])


def test_layout_helpers_round_trip():
    x = _spectrum((2, 3, 5, 4), 0)
    assert not is_mode_major(x)
    y = _mode_major_copy(x)
    assert is_mode_major(y) and torch.equal(x, y)
    assert mode_major(y).data_ptr() == y.data_ptr()  # no copy once mode-major
    assert mode_major(y).shape == (20, 2, 3)


def _reference_conv(conv: SpectralConv2d, x: torch.Tensor, skip: torch.Tensor | None):
    """K(k) x(k) on |k| <= (min(G, N) - 1) // 2 (+ skip x(k) everywhere), by einsum."""
    n = x.shape[-1]
    m = (min(conv.global_modes, n) - 1) // 2
    big = 2 * conv.max_modes + 1
    idx_k = torch.tensor([*range(m + 1), *range(big - m, big)])
    idx_x = torch.tensor([*range(m + 1), *range(n - m, n)])
    kernel = conv.kernel_spectrum()[:, :, idx_k[:, None], idx_k[None, :]]  # (O, I, P, P)
    out = torch.zeros(x.shape[0], conv.out_channels, n, n, dtype=x.dtype)
    low = x[:, :, idx_x[:, None], idx_x[None, :]]
    out[:, :, idx_x[:, None], idx_x[None, :]] = torch.einsum("oipq,bipq->bopq", kernel, low)
    if skip is not None:
        out = out + torch.einsum("oi,bihw->bohw", skip.to(x.dtype), x)
    return out


@pytest.mark.parametrize(("n", "g"), [(28, 28), (28, 8), (11, 16)])
@pytest.mark.parametrize("with_skip", [False, True])
@pytest.mark.parametrize("mode_major_in", [False, True])
def test_conv_equals_the_mode_by_mode_definition(n, g, with_skip, mode_major_in):
    """Dense (all modes in one product, skip folded in) and sparse (few kept modes) paths."""
    torch.manual_seed(0)
    conv = SpectralConv2d(3, 4, g, 5).double()
    skip = SpectralSkip(3, 4).double()
    x = _spectrum((2, 3, n, n), n)
    if mode_major_in:
        x = _mode_major_copy(x)
    x.requires_grad_()
    w = skip.weight if with_skip else None
    out = conv(x, skip=w)
    assert is_mode_major(out)
    ref = _reference_conv(conv, x, w)
    assert (out - ref).abs().max() <= 1e-13
    probe = _spectrum((2, 4, n, n), 99)
    params = [x, conv.weight] + ([skip.weight] if with_skip else [])
    ours = torch.autograd.grad((out * probe.conj()).real.sum(), params)
    theirs = torch.autograd.grad((ref * probe.conj()).real.sum(), params)
    for a, b in zip(ours, theirs, strict=True):
        assert (a - b).abs().max() <= 1e-12 * max(1.0, b.abs().max().item())


def test_skip_keeps_the_layout_and_the_values():
    skip = SpectralSkip(3, 2).double()
    x = _spectrum((2, 3, 6, 6), 1)
    with torch.no_grad():
        a, b = skip(x), skip(_mode_major_copy(x))
    assert is_mode_major(b) and not is_mode_major(a)
    assert (a - b).abs().max() <= 1e-15


@settings(max_examples=25, deadline=None)
@given(n=st.integers(3, 30), data=st.data())
def test_coefficients_read_off_the_spectrum_equal_the_analysis(n, data):
    """Xc = C Re(ifft2 X) C^T, for any (also non-Hermitian) X; the backward is its transpose."""
    m = data.draw(st.integers(0, kept_modes(n)))
    g = torch.Generator().manual_seed(n * 31 + m)
    spec = torch.randn(n * n, 5, generator=g, dtype=torch.complex128, requires_grad=True)
    idx = coefficient_reader(n, m)
    ours = ReadCoefficients.apply(spec, idx)
    c = analysis_matrix(n, m)
    x = torch.fft.ifft2(spec.T.reshape(5, n, n), norm="forward").real
    ref = torch.einsum("ap,mpq,bq->abm", c, x, c)
    assert ours.shape == (2 * m + 1, 2 * m + 1, 5)
    assert (ours - ref).abs().max() <= 1e-13
    cols = spec.detach()[:, 1:4]  # a chunk of maps: strided rows, as the layer reads them
    assert (real_coefficients(cols, idx) - ref[..., 1:4]).abs().max() <= 1e-13
    probe = torch.randn(ours.shape, generator=g, dtype=F64)
    (g_ours,) = torch.autograd.grad((ours * probe).sum(), spec)
    (g_ref,) = torch.autograd.grad((ref * probe).sum(), spec)
    assert (g_ours - g_ref).abs().max() <= 1e-12


@pytest.mark.parametrize("pool", [1, 2])
def test_nonlinearity_equals_the_loop_in_either_layout_and_returns_mode_major(pool):
    torch.manual_seed(0)
    layer = ScaleEqNonlinearity(
        torch.relu, base_res=6, max_res=16, channels=3, normalization="instance", pool_window=pool
    ).double()
    x = _spectrum((2, 3, 16, 16), 5)
    probe = _spectrum((2, 3, layer.output_size(16), layer.output_size(16)), 6)

    def run(fn, inp):
        inp = inp.detach().requires_grad_()
        out = fn(inp)
        (grad,) = torch.autograd.grad((out * probe.conj()).real.sum(), inp)
        return out.detach(), grad

    ref, ref_grad = run(lambda s: reference_forward(layer, s), x)
    for inp in (x, _mode_major_copy(x)):
        out, grad = run(layer, inp)
        assert is_mode_major(out)
        assert (out - ref).abs().max() <= 1e-12
        assert (grad - ref_grad).abs().max() <= 1e-12


def test_head_equals_the_loop_in_either_layout():
    torch.manual_seed(0)
    head = ScaleConsistentHead(3, 8, 4, 6, grid_size=12, pool_window=6).double().eval()
    x = _spectrum((2, 3, 12, 12), 7)
    ref = reference_head_features(head, x)
    for inp in (x, _mode_major_copy(x)):
        assert (head.features(inp) - ref).abs().max() <= 1e-12


def test_head_gradient_of_a_dead_channel_is_shared_not_multiplied():
    """An all-zero map ties every position of every pooling window: the gradient must be
    split among them (as amax's), not handed whole to each."""
    torch.manual_seed(0)
    head = ScaleConsistentHead(2, 8, 4, 6, grid_size=12, pool_window=6).double()
    x = _spectrum((1, 2, 12, 12), 8)
    x[:, 1] = 0.0  # a dead channel
    x.requires_grad_()
    feats = head.features(x)
    (grad,) = torch.autograd.grad(feats.sum(), x)

    def by_amax(spec: torch.Tensor) -> torch.Tensor:  # the same features with autograd's amax
        out = []
        for r in head.resolutions(12):
            m = kept_modes(r)
            mask = torch.zeros(12, dtype=torch.bool)
            mask[: m + 1] = mask[12 - m :] = True
            crop = spec * (mask[:, None] & mask[None, :])
            y = torch.fft.ifft2(crop, norm="forward").real  # on the 12 grid
            out.append(y.view(1, 2, 2, 6, 2, 6).amax(dim=3).amax(dim=4).reshape(1, -1))
        return torch.stack(out, 1)

    ref = by_amax(x)
    assert (feats - ref).abs().max() <= 1e-12
    (ref_grad,) = torch.autograd.grad(ref.sum(), x)
    assert (grad - ref_grad).abs().max() <= 1e-12
    assert grad[:, 1].abs().max() > 0  # the dead channel still learns, by the shared gradient
