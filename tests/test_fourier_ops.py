"""Ideal Fourier resampling D_r: the definition of scaling for the Fourier models."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scale_datasets.errors import InvalidParameterError
from scale_datasets.ops.fourier import (
    kept_modes,
    resample,
    resample_1d,
    resample_batch,
    resample_spectrum,
    resample_spectrum_1d,
    resampling_matrix,
)


def _images(seed: int, n: int, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(2, 3, n, n, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@settings(max_examples=60, deadline=None)
@given(st.integers(4, 33), st.data())
def test_down_then_down_equals_down_once(n, data):
    b = data.draw(st.integers(1, n))
    a = data.draw(st.integers(1, b))
    x = _images(n, n)
    assert torch.allclose(resample(resample(x, b), a), resample(x, a), atol=1e-12)
    s = torch.randn(4, n, dtype=torch.float64)
    assert torch.allclose(resample_1d(resample_1d(s, b), a), resample_1d(s, a), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 30), st.integers(0, 40))
def test_band_limited_signals_are_reproduced_exactly(r, extra):
    y = resample(_images(r, 40), r)  # band-limited to r
    assert torch.allclose(resample(y, r), y, atol=1e-12)
    assert torch.allclose(resample(resample(y, r + extra), r), y, atol=1e-12)  # up, then down


def test_the_mean_is_kept_and_output_is_real():
    x = _images(0, 28)
    for r in (1, 8, 15, 28, 50):
        y = resample(x, r)
        assert y.dtype == torch.float64 and y.shape == (2, 3, r, r)
        assert torch.allclose(y.mean((-2, -1)), x.mean((-2, -1)), atol=1e-12)


def test_only_the_nyquist_mode_of_an_even_grid_is_dropped():
    assert [kept_modes(28, r) for r in (8, 9, 10, 27, 28, 40)] == [3, 4, 4, 13, 13, 13]
    # r = 2m + 1 and r = 2m + 2 keep the same modes, but 2m + 3 keeps one ring more
    x = _images(1, 28)
    assert not torch.allclose(resample(resample(x, 11), 9), resample(x, 11)[..., :9, :9])
    spectrum = torch.fft.fft2(resample(x, 11), norm="forward")
    assert spectrum[..., 5, 5].abs().min() > 0  # ring 5 of an 11-grid is there


def test_spectrum_and_real_versions_agree():
    x = _images(2, 24)
    for size in (7, 12, (9, 16)):
        spectrum = resample_spectrum(torch.fft.fft2(x, norm="forward"), size)
        real = torch.fft.ifft2(spectrum, norm="forward")
        assert real.imag.abs().max() < 1e-12
        assert torch.allclose(real.real, resample(x, size), atol=1e-12)
    s = x[..., 0, :]
    spectrum = resample_spectrum_1d(torch.fft.fft(s, norm="forward"), 9)
    assert torch.allclose(torch.fft.ifft(spectrum, norm="forward").real, resample_1d(s, 9))


def test_float32_and_gradients():
    x = _images(3, 20, torch.float32).requires_grad_()
    y = resample(x, 11)
    assert y.dtype == torch.float32
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_bad_sizes_are_rejected():
    with pytest.raises(InvalidParameterError, match="size must be 2 positive"):
        resample(_images(0, 8), 0)
    with pytest.raises(InvalidParameterError, match="real images"):
        resample(torch.zeros(2, 2, dtype=torch.complex64), 2)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 45))
def test_the_batch_resampler_equals_the_fft_definition(h, w, r):
    """Both of resample_batch's paths (matrices for small images or awkward r, FFT otherwise)
    give D_r: float64 to round-off, float32 to float rounding."""
    x = torch.randn(
        3, 2, h, w, generator=torch.Generator().manual_seed(h * w + r), dtype=torch.float64
    )
    expected = resample(x, (r, r))
    assert torch.allclose(resample_batch(x, r), expected, rtol=0, atol=1e-12)
    assert torch.allclose(resample_batch(x.float(), r).double(), expected, rtol=0, atol=5e-5)


@pytest.mark.parametrize("r", [49, 64, 96, 97])
def test_the_batch_resampler_on_stl_sized_images_in_several_chunks(r):
    x = torch.rand(40, 3, 96, 96, generator=torch.Generator().manual_seed(r))  # > 1 chunk
    expected = resample(x.double(), r)
    got = resample_batch(x, r)
    assert got.shape == (40, 3, r, r) and got.dtype == torch.float32
    assert (got.double() - expected).abs().max().item() < 5e-6


def test_the_resampling_matrix_is_d_r_of_the_unit_impulses():
    for n, r in ((28, 8), (28, 28), (96, 97), (9, 4)):
        matrix = resampling_matrix(n, r, torch.float64)
        impulses = torch.eye(n, dtype=torch.float64)
        assert torch.allclose(matrix, resample_1d(impulses, r).T, atol=1e-14)
