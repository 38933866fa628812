"""Equivariance error, scale consistency and per-resolution accuracy."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from scale_datasets import ScaleDataset
from scale_datasets.build import build
from scale_datasets.errors import InvalidParameterError
from scale_datasets.ops.fourier import resample
from scale_eq.fourier.spectral_conv import SpectralConv1d, SpectralConvBlock2d
from scale_eq.metrics import (
    accuracy_per_resolution,
    accuracy_per_scale,
    equivariance_error,
    scale_consistency,
)


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


# --- accuracy per scale ----------------------------------------------------------------------

# A fake grid: item i has scale FAKE_SCALES[i % 3], label i % 4 and an image whose pixel sum is
# the class _SumClassifier predicts: the label for the items in RIGHT, label + 1 otherwise.
FAKE_SCALES = (0.7, 0.5, 2.0)  # 0.7 is not a float32: rows are keyed by np.float32(0.7)
RIGHT = frozenset({0, 1, 2, 4, 6, 7, 9, 10})


class _FakeScaleItems(Dataset):
    """12 items (image (1, 2, 2), label, scale), the scale a Python float as ScaleDataset's."""

    def __len__(self) -> int:
        return 12

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, float]:
        label = i % 4
        predicted = label if i in RIGHT else (label + 1) % 4
        image = torch.full((1, 2, 2), predicted / 4, dtype=torch.float32)
        return image, label, FAKE_SCALES[i % 3]


class _SumClassifier(nn.Module):
    """Predicts class round(sum of pixels) of 4; records its mode and the batch sizes seen."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))
        self.seen: list[tuple[bool, bool, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((self.training, torch.is_grad_enabled(), x.shape[0]))
        cls = x.sum((1, 2, 3)).round().long()
        return F.one_hot(cls, 4).to(x.dtype) + 0 * self.dummy


def test_accuracy_per_scale_groups_items_by_their_exact_float32_scale():
    # scale 0.7: items 0 3 6 9 -> right 0 6 9; 0.5: 1 4 7 10 -> all right; 2.0: 2 5 8 11 -> 2
    model = _SumClassifier().train()
    result = accuracy_per_scale(model, _FakeScaleItems(), batch_size=5)
    assert result.scales.dtype == np.float32
    assert result.scales.tolist() == np.array([0.5, 0.7, 2.0], dtype=np.float32).tolist()
    assert result.counts.tolist() == [4, 4, 4]
    assert result.correct.tolist() == [4, 3, 1]
    assert result.accuracy.tolist() == [1.0, 0.75, 0.25]
    assert result.mean == 2 / 3
    assert result.overall == 8 / 12
    # batches of 5, 5, 2, in eval mode without gradients; the training mode is restored
    assert model.seen == [(False, False, 5), (False, False, 5), (False, False, 2)]
    assert model.training
    # workers and a batch per item change nothing
    again = accuracy_per_scale(_SumClassifier(), _FakeScaleItems(), batch_size=1, num_workers=2)
    assert again.as_dict() == result.as_dict()
    # a batch transform runs before the model: blanked images all predict 0, right for the
    # items of label 0 (4, 0 and 8, one at each scale)
    blank = accuracy_per_scale(_SumClassifier(), _FakeScaleItems(), transform=lambda x: 0 * x)
    assert blank.correct.tolist() == [1, 1, 1]
    with pytest.raises(ValueError):  # read-only, and a frozen dataclass
        result.correct[0] = 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.scales = result.scales  # type: ignore[misc]


def test_scale_accuracy_rows_for_plots_and_csv():
    result = accuracy_per_scale(_SumClassifier(), _FakeScaleItems(), batch_size=12)
    seven = float(np.float32(0.7))  # the exact value of the float32 key
    assert result.to_rows() == [
        {"scale": 0.5, "accuracy": 1.0, "correct": 4, "count": 4},
        {"scale": seven, "accuracy": 0.75, "correct": 3, "count": 4},
        {"scale": 2.0, "accuracy": 0.25, "correct": 1, "count": 4},
    ]
    assert result.as_dict() == {
        "scale": [0.5, seven, 2.0],
        "accuracy": [1.0, 0.75, 0.25],
        "correct": [4, 3, 1],
        "count": [4, 4, 4],
    }
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(result.as_dict()), lineterminator="\n")
    writer.writeheader()
    writer.writerows(result.to_rows())
    lines = out.getvalue().splitlines()
    assert lines[0] == "scale,accuracy,correct,count"
    assert lines[2] == f"{seven!r},0.75,3,4"
    assert np.float32(lines[2].split(",")[0]) == np.float32(0.7)  # the CSV keeps the key


class _Pairs(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.zeros(1, 2, 2), 0


class _ScaleVectors(_Pairs):
    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        return torch.zeros(1, 2, 2), 0, torch.ones(2)


class _NanScales(_Pairs):
    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, float]:
        return torch.zeros(1, 2, 2), 0, math.nan


def test_accuracy_per_scale_rejects_datasets_without_scales_and_bad_arguments():
    model = _SumClassifier()
    for dataset in (_Pairs(), _ScaleVectors(), _NanScales()):
        with pytest.raises(InvalidParameterError, match=r"^dataset: "):
            accuracy_per_scale(model, dataset)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(InvalidParameterError, match=r"^batch_size: "):
            accuracy_per_scale(model, _FakeScaleItems(), batch_size=bad)
    with pytest.raises(InvalidParameterError, match=r"^num_workers: "):
        accuracy_per_scale(model, _FakeScaleItems(), num_workers=-1)
    with pytest.raises(InvalidParameterError, match=r"^model: "):
        accuracy_per_scale(lambda x: x.sum((1, 2, 3)), _FakeScaleItems())  # no class axis
    empty = accuracy_per_scale(
        model, TensorDataset(torch.zeros(0, 1), torch.zeros(0), torch.zeros(0))
    )
    assert empty.scales.tolist() == [] and math.isnan(empty.mean) and math.isnan(empty.overall)


# --- accuracy per scale on a real Dynamic Scale MNIST build ----------------------------------

GRID = np.array([0.7, 1.0, 1.9], dtype=np.float32)


@pytest.fixture(scope="module")
def dynamic_file(fake_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dynamic") / "d.h5"
    return build(
        "dynamic-mnist",
        out,
        source_dir=fake_source,
        workers=1,
        n_train=20,
        n_val=0,
        n_test=30,
        canvas=56,
        realisations=1,
    )


def _grey_sum(x: torch.Tensor) -> torch.Tensor:
    """Each image's exact sum of grey levels (its pixels are k / 255)."""
    return (x * 255).round().long().sum((1, 2, 3))


class _Lookup(nn.Module):
    """Predicts the class recorded for the image's grey-level sum (class 0 for unknown sums)."""

    def __init__(self, table: dict[int, int]) -> None:
        super().__init__()
        self.table = table

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls = torch.tensor([self.table.get(int(s), 0) for s in _grey_sum(x)])
        return F.one_hot(cls, 10).float()


def _lookup_table(dataset: ScaleDataset, label_of: Callable[[int, float], int]) -> dict[int, int]:
    """grey-level sum -> label_of(label, scale) over every item, failing on a clash."""
    table: dict[int, int] = {}
    for image, label, scale in dataset:
        key = int(_grey_sum(image[None])[0])
        assert table.setdefault(key, label_of(label, scale)) == label_of(label, scale)
    return table


def test_accuracy_per_scale_on_a_dynamic_mnist_grid(dynamic_file: Path):
    grid = ScaleDataset(dynamic_file, "test", realisation=0, scales=GRID, return_scale=True)
    assert len(grid) == 90
    right = _Lookup(_lookup_table(grid, lambda label, scale: label))
    result = accuracy_per_scale(right, grid, batch_size=16)
    assert result.scales.tolist() == GRID.tolist()
    assert result.counts.tolist() == [30, 30, 30]
    assert result.correct.tolist() == [30, 30, 30]
    assert result.accuracy.tolist() == [1.0, 1.0, 1.0]
    assert result.mean == 1.0 and result.overall == 1.0
    # right only at the middle scale: the rows are the items' own scales, in order
    middle = _lookup_table(grid, lambda label, s: label if s == GRID[1] else (label + 1) % 10)
    result = accuracy_per_scale(_Lookup(middle), grid, batch_size=7, num_workers=2)
    assert result.correct.tolist() == [0, 30, 0]
    assert result.accuracy.tolist() == [0.0, 1.0, 0.0]
    assert result.mean == 1 / 3
    # right only for even labels: the share of even test digits at every scale
    even = int(np.sum(grid.labels % 2 == 0))
    parity = _lookup_table(grid, lambda label, s: label if label % 2 == 0 else (label + 1) % 10)
    result = accuracy_per_scale(_Lookup(parity), grid)
    assert result.correct.tolist() == [even, even, even]
    assert result.accuracy.tolist() == [even / 30] * 3


def test_accuracy_per_scale_on_a_fixed_scale_split(dynamic_file: Path):
    split = ScaleDataset(dynamic_file, "test", realisation=0, return_scale=True)
    values, counts = np.unique(split.values, return_counts=True)
    result = accuracy_per_scale(_Lookup(_lookup_table(split, lambda label, s: label)), split)
    assert result.scales.tolist() == values.tolist()  # one row per distinct stored float32
    assert result.counts.tolist() == counts.tolist()
    assert int(result.counts.sum()) == 30
    assert result.accuracy.tolist() == [1.0] * len(values)
    with pytest.raises(InvalidParameterError, match=r"^dataset: .*return_scale=True"):
        accuracy_per_scale(_Lookup({}), ScaleDataset(dynamic_file, "test"))
