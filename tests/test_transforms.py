"""Train-time transforms: exact draws from an explicit generator, invariants, worker re-keying."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as tvf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch.utils.data import DataLoader
from torchvision.transforms import Compose, Normalize

from scale_datasets.errors import InvalidParameterError
from scale_datasets.transforms import (
    Cutout,
    RandomCircularShift,
    RandomCropPadded,
    RandomHorizontalFlip,
    RandomScale,
    stl10_train_transforms,
)


def _image(c: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Values k / 256 in (0, 1]: exact in float32 and float64, and never 0 (holes show)."""
    pixels = np.random.default_rng(seed).integers(1, 257, (c, h, w))
    return torch.from_numpy((pixels / 256).astype(np.float32))


def test_circular_shift_is_torch_roll_by_the_drawn_shifts():
    image = _image(1, 28, 28)
    gen = np.random.default_rng(3)
    shift = RandomCircularShift(gen, p=0.7, max_fraction=0.25)
    rolled = 0
    for _ in range(40):
        twin = copy.deepcopy(shift.generator)  # the state the next call starts from
        out = shift(image)
        if twin.random() < 0.7:
            dy, dx = int(twin.integers(-7, 8)), int(twin.integers(-7, 8))
            assert torch.equal(out, torch.roll(image, (dy, dx), dims=(-2, -1)))
            rolled += 1
        else:
            assert torch.equal(out, image)
        assert twin.bit_generator.state == shift.generator.bit_generator.state
    assert 15 < rolled < 40  # p = 0.7 both ways


def test_circular_shift_range_follows_height_and_width():
    """floor(0.25 * 10) = 2 rows, floor(0.25 * 21) = 5 columns; every shift in range is used."""
    image = torch.arange(10 * 21, dtype=torch.float32).reshape(1, 10, 21)
    shift = RandomCircularShift(np.random.default_rng(0), p=1.0)
    rows, cols = set(), set()
    for _ in range(500):
        (r, c), *_ = torch.nonzero(shift(image)[0] == 0).tolist()  # where pixel (0, 0) went
        rows.add((r + 5) % 10 - 5)  # back to a signed shift
        cols.add((c + 10) % 21 - 10)
    assert rows == set(range(-2, 3)) and cols == set(range(-5, 6))


@settings(max_examples=60, deadline=None)
@given(
    hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=20),
    st.floats(0.0, 1.0),
    st.floats(0.0, 0.99),
    st.integers(0, 2**32 - 1),
)
def test_circular_shift_keeps_the_values_and_their_sum(shape, p, max_fraction, seed):
    image = _image(*shape, seed=seed)
    out = RandomCircularShift(np.random.default_rng(seed), p, max_fraction)(image)
    assert out.shape == image.shape
    assert torch.equal(torch.sort(out.flatten()).values, torch.sort(image.flatten()).values)
    assert out.double().sum() == image.double().sum()  # k / 256 values: exact float64 sums


def test_crop_equals_torchvision_pad_then_crop_at_the_drawn_offset():
    image = _image(3, 96, 96)
    crop = RandomCropPadded(np.random.default_rng(1), size=96, padding=12)
    offsets = set()
    for _ in range(30):
        twin = copy.deepcopy(crop.generator)
        out = crop(image)
        top, left = int(twin.integers(0, 25)), int(twin.integers(0, 25))
        offsets.add((top, left))
        expected = tvf.crop(tvf.pad(image, [12], fill=0), top, left, 96, 96)
        assert torch.equal(out, expected)
    assert len(offsets) > 20


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 30),
    st.integers(1, 30),
    st.integers(0, 8),
    st.data(),
)
def test_crop_shape_and_content(c, h, w, padding, data):
    size = data.draw(st.integers(1, min(h, w) + 2 * padding), label="size")
    image = _image(c, h, w, seed=h * w)
    out = RandomCropPadded(np.random.default_rng(size), size, padding)(image)
    assert out.shape == (c, size, size)
    # Whatever is not padding is a contiguous window of the image.
    inside = out[0] > 0
    rows, cols = torch.nonzero(inside.any(1)).flatten(), torch.nonzero(inside.any(0)).flatten()
    if len(rows):
        window = out[:, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        assert bool((window > 0).all())
        assert any(
            torch.equal(window, image[:, y : y + window.shape[1], x : x + window.shape[2]])
            for y in range(h - window.shape[1] + 1)
            for x in range(w - window.shape[2] + 1)
        )


def test_crop_that_cannot_fit_is_refused_by_name():
    with pytest.raises(InvalidParameterError, match="size: a 40 x 40 crop does not fit"):
        RandomCropPadded(np.random.default_rng(0), size=40, padding=2)(_image(1, 30, 30))


def test_flip_draws_and_flipping_twice_is_the_identity():
    image = _image(3, 8, 11)
    mirror = torch.from_numpy(image.numpy()[..., ::-1].copy())
    flip = RandomHorizontalFlip(np.random.default_rng(5), p=0.5)
    outcomes = []
    for _ in range(40):
        twin = copy.deepcopy(flip.generator)
        out = flip(image)
        outcomes.append(twin.random() < 0.5)
        assert torch.equal(out, mirror if outcomes[-1] else image)
    assert 5 < sum(outcomes) < 35
    always = RandomHorizontalFlip(np.random.default_rng(0), p=1.0)
    assert torch.equal(always(always(image)), image)
    never = RandomHorizontalFlip(np.random.default_rng(0), p=0.0)
    assert all(torch.equal(never(image), image) for _ in range(10))


def _hole(h: int, w: int, cy: int, cx: int, length: int) -> torch.Tensor:
    mask = torch.zeros(h, w, dtype=torch.bool)
    for y in range(cy - length // 2, cy - length // 2 + length):
        for x in range(cx - length // 2, cx - length // 2 + length):
            if 0 <= y < h and 0 <= x < w:
                mask[y, x] = True
    return mask


@pytest.mark.parametrize("length", [32, 7, 1])
def test_cutout_zeroes_exactly_the_clipped_square_around_the_drawn_pixel(length):
    image = _image(3, 96, 96)
    before = image.clone()
    cutout = Cutout(np.random.default_rng(length), holes=1, length=length)
    clipped = 0
    for _ in range(20):
        twin = copy.deepcopy(cutout.generator)
        out = cutout(image)
        cy, cx = int(twin.integers(96)), int(twin.integers(96))
        hole = _hole(96, 96, cy, cx, length)
        assert torch.equal(out == 0, hole.expand(3, -1, -1))
        assert torch.equal(out[:, ~hole], image[:, ~hole])
        clipped += int(hole.sum()) < length * length
    assert torch.equal(image, before)  # the input is not modified
    if length == 32:
        assert clipped > 0  # some holes met a border


def test_cutout_with_several_holes_is_the_union_of_the_drawn_squares():
    image = _image(1, 40, 30)
    twin = np.random.default_rng(9)
    out = Cutout(np.random.default_rng(9), holes=3, length=10)(image)
    union = torch.zeros(40, 30, dtype=torch.bool)
    for _ in range(3):
        union |= _hole(40, 30, int(twin.integers(40)), int(twin.integers(30)), 10)
    assert torch.equal(out[0] == 0, union)


@pytest.mark.parametrize(
    "make",
    [
        lambda g: RandomCircularShift(g),
        lambda g: RandomCropPadded(g, size=24, padding=4),
        lambda g: RandomHorizontalFlip(g),
        lambda g: Cutout(g, length=9),
        lambda g: stl10_train_transforms(g),
    ],
)
def test_same_seed_same_outputs_call_after_call(make):
    image = _image(3, 96, 96)
    first, again = make(np.random.default_rng(42)), make(np.random.default_rng(42))
    other = make(np.random.default_rng(43))
    outs = [first(image) for _ in range(12)]
    assert all(torch.equal(a, again(image)) for a in outs)
    assert not all(torch.equal(a, other(image)) for a in outs)


def test_stl10_transforms_share_one_generator_and_match_their_parts():
    gen = np.random.default_rng(7)
    pipeline = stl10_train_transforms(gen)
    assert [type(t) for t in pipeline.transforms] == [
        RandomCropPadded,
        RandomHorizontalFlip,
        Cutout,
    ]
    assert all(t.generator is gen for t in pipeline.transforms)
    crop, flip, cutout = pipeline.transforms
    assert (crop.size, crop.padding, flip.p, cutout.holes, cutout.length) == (96, 12, 0.5, 1, 32)
    assert pipeline(_image(3, 96, 96)).shape == (3, 96, 96)


def test_stl10_normalize_goes_before_cutout_as_in_sesn():
    """SESN: ... ToTensor, Normalize, Cutout: the hole is 0 after normalisation."""
    mean, std = (0.4467, 0.4398, 0.4066), (0.2603, 0.2566, 0.2713)
    pipeline = stl10_train_transforms(np.random.default_rng(0), normalize=(mean, std))
    assert [type(t) for t in pipeline.transforms] == [
        RandomCropPadded,
        RandomHorizontalFlip,
        Normalize,
        Cutout,
    ]
    out = pipeline(torch.full((3, 96, 96), 0.5))
    assert int((out == 0).all(0).sum()) >= 16 * 16  # the hole, at least a quarter of 32 x 32


class _Repeat(torch.utils.data.Dataset):
    """The same image every item: only the transform's draws tell items apart."""

    def __init__(self, transform) -> None:
        self.image = _image(3, 32, 32)
        self.transform = transform

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(self.image)


@pytest.mark.parametrize(
    "make",
    [
        lambda g: RandomCircularShift(g, p=1.0),
        lambda g: RandomScale(g),  # re-keyed by the same base class
        lambda g: Compose([RandomCropPadded(g, 32, 4), RandomHorizontalFlip(g), Cutout(g, 1, 8)]),
    ],
)
def test_workers_draw_distinct_yet_reproducible_streams(make):
    def epochs(n: int) -> list[list[torch.Tensor]]:
        loader = DataLoader(
            _Repeat(make(np.random.default_rng(0))),
            batch_size=1,
            num_workers=2,
            multiprocessing_context="fork",
            generator=torch.Generator().manual_seed(0),
        )
        return [[batch[0] for batch in loader] for _ in range(n)]

    first, again = epochs(2), epochs(2)
    for a, b in zip(first, again, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    epoch = first[0]
    # Items alternate between the workers (0, 2, 4, 6 on worker 0): their streams differ.
    assert not all(torch.equal(x, y) for x, y in zip(epoch[0::2], epoch[1::2], strict=True))
    # The DataLoader gives the workers new seeds every epoch, so the draws change too.
    assert not all(torch.equal(x, y) for x, y in zip(first[0], first[1], strict=True))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda g: RandomCircularShift(g, p=1.5), r"p: need 0 <= p <= 1"),
        (lambda g: RandomCircularShift(g, p=float("nan")), r"p: need 0 <= p <= 1"),
        (lambda g: RandomCircularShift(g, max_fraction=1.0), r"max_fraction: need 0 <= "),
        (lambda g: RandomCircularShift(g, max_fraction=-0.1), r"max_fraction"),
        (lambda g: RandomCropPadded(g, size=0), r"size: need an int >= 1"),
        (lambda g: RandomCropPadded(g, padding=-1), r"padding: need an int >= 0"),
        (lambda g: RandomCropPadded(g, size=9.5), r"size"),
        (lambda g: RandomHorizontalFlip(g, p=-0.1), r"p: need 0 <= p <= 1"),
        (lambda g: Cutout(g, holes=0), r"holes: need an int >= 1"),
        (lambda g: Cutout(g, length=0), r"length: need an int >= 1"),
        (lambda g: RandomHorizontalFlip(0), r"generator: need a numpy.random.Generator"),
    ],
)
def test_bad_parameters_raise_invalid_parameter(make, match):
    with pytest.raises(InvalidParameterError, match=match):
        make(np.random.default_rng(0))


def test_random_scale_rejects_bad_arguments_when_made():
    from scale_datasets.transforms import RandomScale

    with pytest.raises(InvalidParameterError, match="interpolation must be one of"):
        RandomScale(np.random.default_rng(0), interpolation="lanczos")
    with pytest.raises(InvalidParameterError, match="min_scale, max_scale"):
        RandomScale(np.random.default_rng(0), min_scale=True, max_scale=2.0)
