"""Equivariance error, scale consistency and per-resolution accuracy."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from scale_datasets.ops.fourier import resample
from scale_eq.fourier.spectral_conv import SpectralConv1d, SpectralConvBlock2d
from scale_eq.metrics import accuracy_per_resolution, equivariance_error, scale_consistency


def _x(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _doubles_below(n: int):
    """f(x) = x at size n, 2x at any other size: err(r) = 1 for every r != n."""
    return lambda x: x if x.shape[-1] == n else 2 * x


def test_mean_is_over_pairs_not_over_all_sizes():
    x = _x((3, 2, 28, 28))
    report = equivariance_error(_doubles_below(28), x, [8, 16, 28])
    assert report.per_resolution == pytest.approx({8: 1.0, 16: 1.0, 28: 0.0})
    assert report.mean == pytest.approx(1.0)  # 2 pairs; the published tester would say 2/3
    assert report.reference == 28
    assert report.per_sample[8].shape == (3,)
    assert torch.allclose(report.per_sample[16], torch.ones(3, dtype=torch.float64))
    # without the reference listed, every listed size is a pair
    assert equivariance_error(_doubles_below(28), x, [8, 16]).mean == pytest.approx(1.0)


def test_exactly_equivariant_maps_score_zero_and_others_do_not():
    torch.manual_seed(1)
    block = SpectralConvBlock2d(2, 3, 28, 5).double()

    def spectral(x: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifft2(block(torch.fft.fft2(x, norm="forward")), norm="forward").real

    x = _x((2, 2, 28, 28), 2)
    assert equivariance_error(spectral, x, range(8, 29)).mean < 1e-20
    # the same layer taking and returning spectra
    report = equivariance_error(block, x, range(8, 29), input_spectrum=True, output_spectrum=True)
    assert report.mean < 1e-20
    # a pixel-grid 3x3 convolution is not scale-equivariant
    conv = nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular").double()
    assert equivariance_error(conv, x, [8, 14, 28]).mean > 1e-2


def test_per_sample_false_pools_the_batch():
    x = _x((2, 1, 16, 16), 3)
    x[1] *= 10  # the second sample dominates the pooled ratio

    def f(t: torch.Tensor) -> torch.Tensor:
        if t.shape[-1] == 16:
            return t
        return t * torch.tensor([2.0, 1.0], dtype=t.dtype)[:, None, None, None]  # sample 0 off

    per = equivariance_error(f, x, [8], per_sample=True)
    pooled = equivariance_error(f, x, [8], per_sample=False)
    assert per.per_resolution[8] == pytest.approx(0.5)
    assert pooled.per_resolution[8] < 0.05 and pooled.per_sample is None


def test_pooling_aware_comparison():
    """f = D_ceil(N/2) is pool-equivariant: D_ceil(r/2)(f(x)) == f(D_r x)."""

    def half(t: torch.Tensor) -> torch.Tensor:
        return resample(t, math.ceil(t.shape[-1] / 2))

    x = _x((2, 1, 27, 27), 4)
    assert equivariance_error(half, x, range(6, 28), pool_window=2).mean < 1e-20
    custom = equivariance_error(half, x, [9, 27], output_resolution=lambda r: (r + 1) // 2)
    assert custom.mean < 1e-20
    with pytest.raises(ValueError, match="pool_window"):
        equivariance_error(half, x, [9])


def test_one_dimensional_signals():
    conv = SpectralConv1d(1, 2, 40, 7).double()

    def f(t: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifft(conv(torch.fft.fft(t, norm="forward")), norm="forward").real

    x = _x((3, 1, 50), 5)
    assert equivariance_error(f, x, range(10, 51, 5), dims=1).mean < 1e-20
    assert equivariance_error(lambda t: t.abs(), x, [10, 25], dims=1).mean > 1e-3


def test_dead_channels_and_chunking():
    x = _x((5, 1, 12, 12), 6)
    assert equivariance_error(lambda t: 0 * t, x, [6, 12]).mean == 0.0
    a = equivariance_error(_doubles_below(12), x, [5, 9], batch_size=2)
    b = equivariance_error(_doubles_below(12), x, [5, 9])
    assert a.per_resolution == pytest.approx(b.per_resolution)
    assert a.per_sample[5].shape == (5,)
    with pytest.raises(ValueError):
        equivariance_error(lambda t: t, x, [13])  # larger than the input


class _SizeParity(nn.Module):
    """Predicts class 0 on even sizes, 1 on odd ones."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls = x.shape[-1] % 2
        return F.one_hot(torch.full((x.shape[0],), cls), 2).to(x.dtype) + 0 * self.dummy


def test_scale_consistency():
    x = _x((4, 1, 16, 16), 7)
    model = _SizeParity()
    assert scale_consistency(model, x, [8, 12, 16]) == 1.0
    assert scale_consistency(model, x, [8, 9, 16]) == 0.0
    # a classifier by sign of the mean is consistent: D_r keeps the mean
    by_mean = lambda t: torch.stack([-t.mean((1, 2, 3)), t.mean((1, 2, 3))], -1)  # noqa: E731
    assert scale_consistency(by_mean, x, range(4, 17), batch_size=3) == 1.0


def test_accuracy_per_resolution_from_tensors_and_a_loader():
    x = _x((6, 1, 16, 16), 8)
    y = torch.zeros(6, dtype=torch.long)
    model = _SizeParity().train()
    acc = accuracy_per_resolution(model, (x, y), [8, 9, 16], batch_size=4)
    assert acc == {8: 1.0, 9: 0.0, 16: 1.0}
    assert model.training  # the mode is restored
    mixed = nn.Sequential(_SizeParity(), nn.Dropout()).train()
    mixed[1].eval()
    accuracy_per_resolution(mixed, (x, y), [8])
    assert mixed.training and mixed[0].training and not mixed[1].training
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    assert accuracy_per_resolution(model, loader, [8, 9]) == {8: 1.0, 9: 0.0}
    signals = _x((4, 1, 30), 9)
    acc1d = accuracy_per_resolution(model, (signals, torch.ones(4, dtype=torch.long)), [15], dims=1)
    assert acc1d == {15: 1.0}
