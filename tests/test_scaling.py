"""The batch scaling op must reproduce Pillow's affine transform exactly.

MNIST-Scale is defined by what torchvision/Pillow render; any drift would make our datasets a
different benchmark. So every check here is exact equality against Pillow itself, run on the
installed Pillow (not on a copy of its maths).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageDraw, ImageFilter

from scale_datasets.errors import InvalidParameterError
from scale_datasets.ops import scaling
from scale_datasets.ops.scaling import (
    CENTRES,
    affine_coefficients,
    pil_scale_about_centre,
    scale_about_centre,
)

INTERPOLATIONS = ("bicubic", "bilinear", "nearest")


@pytest.fixture(autouse=True)
def _always_numpy(monkeypatch):
    """Small batches are normally handed to Pillow itself; test the numpy path at every size."""
    monkeypatch.setattr(scaling, "_SMALL_BATCH", 0)


def _pil_batch(
    images: np.ndarray, scales: np.ndarray, canvas, interpolation: str, centre: str = "exact"
) -> np.ndarray:
    return np.stack(
        [
            pil_scale_about_centre(im, s, canvas, interpolation, centre)
            for im, s in zip(images, scales, strict=True)
        ]
    )


def _assert_same_as_pil(images, scales, canvas, interpolation, centre="exact") -> None:
    ours = scale_about_centre(images, scales, canvas, interpolation, centre)
    ref = _pil_batch(images, scales, canvas, interpolation, centre)
    assert ours.dtype == ref.dtype
    assert ours.shape == ref.shape
    if not np.array_equal(ours, ref):
        diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
        bad = np.argwhere(diff > 0)
        pytest.fail(
            f"{interpolation}, {centre} centre: {len(bad)} pixels differ (max {diff.max()}), "
            f"first at {tuple(bad[0])} with scale {scales[bad[0][0]]!r}"
        )


def _digits(n: int, rng: np.random.Generator) -> np.ndarray:
    """MNIST-like images: blurred strokes centred in 28x28, mostly black background."""
    out = np.empty((n, 28, 28), dtype=np.uint8)
    for i in range(n):
        im = Image.new("L", (28, 28), 0)
        draw = ImageDraw.Draw(im)
        pts = [tuple(int(v) for v in rng.integers(5, 23, size=2)) for _ in range(4)]
        draw.line(pts, fill=255, width=int(rng.integers(2, 4)))
        draw.ellipse([8, 6, 20, 14], outline=int(rng.integers(150, 256)), width=2)
        out[i] = np.asarray(im.filter(ImageFilter.GaussianBlur(0.8)))
    return out


# Geometries: (H, W), canvas. Non-square, odd, canvas larger and smaller than the input.
GEOMETRIES = [
    ((28, 28), None),
    ((28, 28), 40),
    ((28, 28), (20, 24)),
    ((17, 23), (30, 11)),
    ((31, 29), None),
    ((5, 9), (3, 2)),
    ((1, 1), None),
    ((1, 4), (4, 4)),
]

EDGE_SCALES = [1.0, 0.3, 0.05, 3.0, 0.5, 2.0, 1e-3, 0.999999, 1.000001, 0.3000000119]


@pytest.mark.parametrize("centre", CENTRES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize(("hw", "canvas"), GEOMETRIES)
def test_random_images_match_pil_exactly(hw, canvas, interpolation, centre) -> None:
    rng = np.random.default_rng(hash((hw, str(canvas))) % 2**32)
    scales = np.concatenate(
        [
            rng.uniform(0.3, 1.0, 12).astype(np.float32),
            rng.uniform(0.5, 2.0, 12).astype(np.float32),
            np.array(EDGE_SCALES, dtype=np.float32),
        ]
    )
    images = rng.integers(0, 256, (scales.shape[0], *hw), dtype=np.uint8)
    _assert_same_as_pil(images, scales, canvas, interpolation, centre)
    # Python/float64 scales too (the float32 ones above are float64 after conversion anyway).
    s64 = np.array(EDGE_SCALES, dtype=np.float64)
    _assert_same_as_pil(images[: s64.shape[0]], s64, canvas, interpolation, centre)


@pytest.mark.parametrize("centre", CENTRES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_digits_match_pil_exactly(interpolation, centre) -> None:
    rng = np.random.default_rng(7)
    images = _digits(60, rng)
    scales = rng.uniform(0.3, 1.0, 60).astype(np.float32)
    _assert_same_as_pil(images, scales, None, interpolation, centre)


@pytest.mark.parametrize("centre", CENTRES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_chunk_and_block_boundaries(monkeypatch, interpolation, centre) -> None:
    """Tiny chunks and blocks: crops, row bands and scatter across many chunks stay exact."""
    monkeypatch.setattr(scaling, "_CHUNK_BYTES", 1)  # one image per chunk
    rng = np.random.default_rng(3)
    images = _digits(9, rng)
    scales = rng.uniform(0.05, 3.0, 9)
    _assert_same_as_pil(images, scales, (25, 31), interpolation, centre)
    monkeypatch.setattr(scaling, "_CHUNK_BYTES", 3 * 110_000)  # a few images per chunk
    monkeypatch.setattr(scaling, "_CHUNKS_PER_BLOCK", 2)
    images = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    scales = rng.uniform(0.3, 1.0, 40).astype(np.float32)
    _assert_same_as_pil(images, scales, None, interpolation, centre)


def test_nearest_reproduces_accumulated_position_drift() -> None:
    """Pillow's NEAREST scale path adds a0 repeatedly; at s = 0.3 that truncates differently.

    The naive ``a0 * (x + 0.5) + a2`` picks another pixel somewhere, so this pins the drift.
    """
    s = 0.3
    a0, _, a2, *_ = affine_coefficients(s, (28, 28), (28, 28))
    x = np.arange(28)
    naive = np.floor(a0 * (x + 0.5) + a2)
    acc = np.cumsum(np.r_[a2 + a0 * 0.5, np.full(27, a0)])
    inside = (acc >= 0) & (acc < 28)
    assert (np.floor(acc) != naive)[inside].any()  # the case is sensitive
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    _assert_same_as_pil(images, np.full(3, s), None, "nearest")


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    data=st.data(),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    canvas=st.one_of(st.none(), st.tuples(st.integers(1, 14), st.integers(1, 14))),
    interpolation=st.sampled_from(INTERPOLATIONS),
    dtype=st.sampled_from([np.uint8, np.uint8, np.float32]),
    centre=st.sampled_from(CENTRES),
)
def test_property_exact_pil_parity(data, h, w, canvas, interpolation, dtype, centre) -> None:
    """Any image, scale, canvas, filter and centre: the same bits as Pillow ("L", or "F")."""
    n = data.draw(st.integers(1, 4), label="n")
    if dtype == np.uint8:
        images = data.draw(hnp.arrays(np.uint8, (n, h, w)), label="images")
    else:
        values = st.floats(-1e3, 1e3, allow_nan=False, width=32)
        images = data.draw(hnp.arrays(np.float32, (n, h, w), elements=values), label="images")
    scales = data.draw(
        hnp.arrays(
            np.float64,
            (n,),
            elements=st.floats(0.02, 4.0, allow_nan=False, allow_infinity=False),
        ),
        label="scales",
    )
    _assert_same_as_pil(images, scales, canvas, interpolation, centre)


@pytest.mark.parametrize("centre", CENTRES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("hw", [(28, 28), (7, 12), (1, 1)])
def test_scale_one_is_identity(hw, interpolation, centre) -> None:
    images = np.random.default_rng(1).integers(0, 256, (4, *hw), dtype=np.uint8)
    ones = np.ones(4, dtype=np.float32)
    ours = scale_about_centre(images, ones, None, interpolation, centre)
    np.testing.assert_array_equal(ours, images)
    np.testing.assert_array_equal(_pil_batch(images, ones, None, interpolation, centre), images)


def test_affine_coefficients_formula() -> None:
    assert affine_coefficients(0.5, (28, 28), (28, 28)) == (2.0, 0.0, -14.0, 0.0, 2.0, -14.0)
    a0, a1, a2, a3, a4, a5 = affine_coefficients(np.float32(0.7), (17, 23), (30, 11))
    s = float(np.float32(0.7))
    assert a0 == 1.0 / s and a4 == a0 and a1 == 0.0 and a3 == 0.0
    assert a2 == a0 * -(11 / 2) + 23 / 2
    assert a5 == a0 * -(30 / 2) + 17 / 2


def test_legacy_centre_is_half_a_pixel_right_and_down() -> None:
    """torchvision < 0.9 kept (14.5, 14.5) of a 28x28 digit in place, not (14, 14)."""
    exact = affine_coefficients(0.5, (28, 28), (28, 28))
    assert exact == affine_coefficients(0.5, (28, 28), (28, 28), centre="exact")
    legacy = affine_coefficients(0.5, (28, 28), (28, 28), "legacy")
    assert legacy == (2.0, 0.0, -14.5, 0.0, 2.0, -14.5)
    # The input point w/2 + 0.5 lands on the canvas point cw/2 + 0.5 (here x: 12 -> 6, y: 9 -> 16).
    a0, _, a2, _, a4, a5 = affine_coefficients(0.5, (17, 23), (31, 11), "legacy")
    assert (a0 * 6.0 + a2, a4 * 16.0 + a5) == (12.0, 9.0)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("s", [0.3, 0.5, 0.8])
def test_legacy_render_moves_content_by_half_a_pixel_times_one_minus_s(s, interpolation) -> None:
    """Scaling about c maps x to c + s (x - c): moving c by 0.5 moves the result by 0.5 (1 - s)."""
    yy, xx = np.mgrid[:28, :28]
    blob = np.exp(-((yy - 13.5) ** 2 + (xx - 13.5) ** 2) / 32.0)[None]  # smooth, centred
    exact = scale_about_centre(blob, [s], None, interpolation)[0]
    legacy = scale_about_centre(blob, [s], None, interpolation, "legacy")[0]

    def centroid(im: np.ndarray) -> np.ndarray:
        return np.array([(im * xx).sum(), (im * yy).sum()]) / im.sum()

    shift = centroid(legacy) - centroid(exact)
    np.testing.assert_allclose(shift, [0.5 * (1 - s)] * 2, atol=0.01)


@pytest.mark.parametrize(
    ("interpolation", "mode_name"),
    [("bicubic", "BICUBIC"), ("bilinear", "BILINEAR"), ("nearest", "NEAREST")],
)
@pytest.mark.parametrize("centre", CENTRES)
def test_matches_torchvision_affine_on_pil(monkeypatch, interpolation, mode_name, centre) -> None:
    """What RandomAffine(degrees=0, scale=...) renders on a PIL image, pixel for pixel.

    Also pins that torchvision hands Pillow exactly our coefficient tuple (bit for bit). For
    "legacy", torchvision >= 0.9 is given the centre torchvision < 0.9 used on PIL images,
    (w * 0.5 + 0.5, h * 0.5 + 0.5) (the line its source keeps as a comment): both go through
    the same matrix code, which for a pure scaling gives the bits the old code gave.
    """
    tvf = pytest.importorskip("torchvision.transforms.functional")
    mode = getattr(tvf.InterpolationMode, mode_name)
    seen: list[tuple[float, ...]] = []
    original = Image.Image.transform

    def spy(self, size, method, data=None, *args, **kwargs):
        seen.append(tuple(data))
        return original(self, size, method, data, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "transform", spy)
    rng = np.random.default_rng(11)
    images = _digits(12, rng)
    scales = np.r_[rng.uniform(0.3, 1.0, 10), 0.3, 1.0].astype(np.float32)
    ours = scale_about_centre(images, scales, None, interpolation, centre)
    legacy = {"center": [28 * 0.5 + 0.5, 28 * 0.5 + 0.5]} if centre == "legacy" else {}
    for i, (im, s) in enumerate(zip(images, scales, strict=True)):
        seen.clear()
        pil = Image.fromarray(im)
        tv = tvf.affine(
            pil,
            angle=0.0,
            translate=[0, 0],
            scale=float(s),
            shear=[0.0, 0.0],
            interpolation=mode,
            **legacy,
        )
        assert seen == [affine_coefficients(float(s), (28, 28), (28, 28), centre)]
        np.testing.assert_array_equal(ours[i], np.asarray(tv))


@pytest.mark.parametrize("centre", CENTRES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize(("hw", "canvas"), [((28, 28), None), ((13, 9), (16, 7)), ((28, 28), 40)])
def test_float32_matches_pil_mode_f(hw, canvas, interpolation, centre) -> None:
    """float32 input follows Pillow mode "F" (float32 row pass): in fact bit for bit."""
    rng = np.random.default_rng(5)
    scales = np.r_[rng.uniform(0.3, 2.0, 20), EDGE_SCALES]
    images = (rng.standard_normal((scales.shape[0], *hw)) * 100).astype(np.float32)
    ours = scale_about_centre(images, scales, canvas, interpolation, centre)
    ref = _pil_batch(images, scales, canvas, interpolation, centre)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=0, atol=0)


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_float64_matches_pil_mode_f_to_round_off(interpolation) -> None:
    """float64 runs the same algorithm in float64; Pillow's float32 row pass is the only gap."""
    rng = np.random.default_rng(6)
    scales = rng.uniform(0.3, 1.5, 20)
    images = rng.uniform(0, 1, (20, 28, 28)).astype(np.float32).astype(np.float64)
    ours = scale_about_centre(images, scales, None, interpolation)
    ref = _pil_batch(images, scales, None, interpolation)
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)


def test_output_shape_dtype_and_input_untouched() -> None:
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    before = images.copy()
    out = scale_about_centre(images, [0.5, 0.6, 0.7, 0.8, 0.9], canvas=32)
    assert out.shape == (5, 32, 32) and out.dtype == np.uint8
    np.testing.assert_array_equal(images, before)
    assert scale_about_centre(images[:0], np.zeros(0)).shape == (0, 28, 28)


def test_non_contiguous_input() -> None:
    rng = np.random.default_rng(4)
    base = rng.integers(0, 256, (6, 40, 40), dtype=np.uint8)
    images = base[::2, 3:31, ::1][:, :, 5:33]  # (3, 28, 28), strided
    scales = np.array([0.4, 0.8, 1.3])
    ours = scale_about_centre(images, scales)
    ref = scale_about_centre(np.ascontiguousarray(images), scales)
    np.testing.assert_array_equal(ours, ref)
    _assert_same_as_pil(images, scales, None, "bicubic")


def test_vanishing_scale_gives_blank_canvas() -> None:
    images = np.full((2, 28, 28), 255, dtype=np.uint8)
    for interpolation in INTERPOLATIONS:
        _assert_same_as_pil(images, np.array([1e-3, 1e-9]), None, interpolation)


GOOD = np.zeros((2, 8, 8), dtype=np.uint8)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scales": [0.5, 0.0]}, "scales"),
        ({"scales": [0.5, -1.0]}, "scales"),
        ({"scales": [0.5, float("nan")]}, "scales"),
        ({"scales": [0.5, float("inf")]}, "scales"),
        ({"scales": [0.5]}, "scales"),
        ({"scales": [[0.5, 0.5]]}, "scales"),
        ({"scales": ["a", "b"]}, "scales"),
        ({"images": np.zeros((8, 8), np.uint8)}, "images"),
        ({"images": np.zeros((2, 1, 8, 8), np.uint8)}, "images"),
        ({"images": np.zeros((2, 8, 8), np.int32)}, "images"),
        ({"images": np.zeros((2, 0, 8), np.uint8)}, "images"),
        ({"interpolation": "lanczos"}, "interpolation"),
        ({"centre": "middle"}, "centre must be one of exact, legacy"),
        ({"canvas": 0}, "canvas"),
        ({"canvas": -3}, "canvas"),
        ({"canvas": (8, 0)}, "canvas"),
        ({"canvas": (8,)}, "canvas"),
        ({"canvas": 2.5}, "canvas"),
    ],
)
def test_bad_arguments_raise_invalid_parameter(kwargs, field) -> None:
    args = {"images": GOOD, "scales": [0.5, 0.5], **kwargs}
    with pytest.raises(InvalidParameterError, match=field) as info:
        scale_about_centre(**args)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("centre", CENTRES)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])  # float64 never goes to Pillow
def test_small_batches_go_through_pillow_with_the_same_result(monkeypatch, dtype, centre) -> None:
    rng = np.random.default_rng(8)
    images = (rng.random((3, 12, 9)) * 255).astype(dtype)
    scales = np.array([0.4, 1.0, 1.7], dtype=np.float32)
    numpy_path = scale_about_centre(images, scales, (10, 13), centre=centre)
    monkeypatch.setattr(scaling, "_SMALL_BATCH", 6)
    small_path = scale_about_centre(images, scales, (10, 13), centre=centre)
    assert small_path.dtype == dtype and small_path.shape == (3, 10, 13)
    np.testing.assert_array_equal(small_path, numpy_path)
