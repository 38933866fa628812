"""Rendering digits on a zero-padded canvas (Dynamic Scale MNIST): numpy and torch renderers.

The reference is Pillow itself on the padded canvas, exactly as the protocol defines a sample:
``Image.fromarray(padded).transform(canvas, AFFINE, affine_coefficients(s, canvas, canvas),
BICUBIC)``. ``scale_on_canvas`` must be bit-identical to it; the torch renderer within 1 grey
level of ``scale_on_canvas``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import debian_fashion_or_skip
from fake_idx import fake_digits
from PIL import Image

from scale_datasets.errors import InvalidParameterError
from scale_datasets.ops.canvas import canvas_offsets, digit_box, scale_on_canvas
from scale_datasets.ops.pil_affine import affine_coefficients
from scale_datasets.ops.torch_scaling import scale_on_canvas_torch
from scale_datasets.sources import load_mnist_like

RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}
# The protocol's range of scales: Basting's per-scale grid, np.logspace(-1, 3.5, 45, base=2).
S_MIN, S_MAX = 0.5, 2**3.5


def reference(digit: np.ndarray, scale: float, canvas: tuple[int, int], interp: str) -> np.ndarray:
    """The protocol's definition of one sample: Pillow on the zero-padded canvas."""
    h, w = digit.shape
    ch, cw = canvas
    top, left = (ch - h) // 2, (cw - w) // 2
    padded = np.zeros((ch, cw), dtype=np.uint8)
    padded[top : top + h, left : left + w] = digit
    data = affine_coefficients(float(scale), (ch, cw), (ch, cw))
    out = Image.fromarray(padded).transform(
        (cw, ch), Image.Transform.AFFINE, data, RESAMPLE[interp]
    )
    return np.asarray(out)


def references(digits: np.ndarray, scales: np.ndarray, canvas, interp="bicubic") -> np.ndarray:
    canvas = (canvas, canvas) if isinstance(canvas, int) else canvas
    return np.stack([reference(d, s, canvas, interp) for d, s in zip(digits, scales, strict=True)])


def spread_scales(rng: np.random.Generator, n: int) -> np.ndarray:
    """n scales spread over [0.5, 11.3]: log-spaced, jittered, with the ends and round values."""
    s = np.geomspace(S_MIN, S_MAX, n) * np.exp(rng.uniform(-0.02, 0.02, n))
    s[:6] = [S_MIN, S_MAX, 1.0, 2.0, 4.0, 8.0]
    return np.clip(s, S_MIN, S_MAX)


@pytest.fixture(scope="module")
def fashion() -> np.ndarray:
    """Real Fashion-MNIST items, half of them touching the 28x28 border (the hard case)."""
    folder = debian_fashion_or_skip()
    images = load_mnist_like("fashion-mnist", source_dir=folder).images
    ring = np.ones((28, 28), dtype=bool)
    ring[1:-1, 1:-1] = False
    touching = np.flatnonzero(images[:, ring].any(axis=1))
    rng = np.random.default_rng(7)
    pick = np.concatenate(
        [rng.choice(touching, 400, replace=False), rng.choice(len(images), 400, replace=False)]
    )
    return np.ascontiguousarray(images[rng.permutation(pick)])


@pytest.fixture(params=["fake", "fashion"])
def digits(request: pytest.FixtureRequest) -> np.ndarray:
    """800 digits: fake soft strokes, or real Fashion-MNIST (skipped when not installed)."""
    if request.param == "fashion":
        return request.getfixturevalue("fashion")
    return fake_digits(np.random.default_rng(3), 800)


def noise_digits(n: int, seed: int = 0) -> np.ndarray:
    """Digits with no zero pixel and hard edges: every tap that reaches them matters."""
    return np.random.default_rng(seed).integers(1, 256, (n, 28, 28), dtype=np.uint8)


# --- numpy renderer against Pillow -------------------------------------------------------------


def test_500_samples_over_the_protocol_scales_are_bit_identical_to_pil(digits):
    """The "Must hold" pixel item, and stronger: every pixel of 500 samples equals PIL exactly."""
    rng = np.random.default_rng(11)
    scales = spread_scales(rng, 500)
    ours = scale_on_canvas(digits[:500], scales, 168)
    assert np.array_equal(ours, references(digits[:500], scales, 168))
    assert ours.shape == (500, 168, 168) and ours.dtype == np.uint8
    assert ours.reshape(500, -1).any(axis=1).all()  # no sample lost


@pytest.mark.parametrize(
    "canvas", [56, 112, 168, 57, (45, 61), (29, 28), 28], ids=lambda c: f"canvas{c}"
)
@pytest.mark.parametrize("interp", ["bicubic", "bilinear", "nearest"])
def test_every_canvas_and_filter_is_bit_identical_to_pil(digits, canvas, interp):
    """Even and odd margins (the extra zero row/column at the bottom/right), non-square canvases,
    a canvas with no margin at all (Pillow then clamps taps to the digit's own edge)."""
    rng = np.random.default_rng(12)
    scales = spread_scales(rng, 60)
    ours = scale_on_canvas(digits[:60], scales, canvas, interp)
    assert np.array_equal(ours, references(digits[:60], scales, canvas, interp))


def test_noise_digits_at_many_scales_are_bit_identical_to_pil():
    """No zero pixel anywhere, so a wrong tap (off by one, wrong clamp) cannot hide."""
    digits = noise_digits(200)
    scales = np.exp(np.random.default_rng(1).uniform(np.log(0.3), np.log(12), 200))
    for canvas in (168, 31, 28):
        ours = scale_on_canvas(digits, scales, canvas)
        assert np.array_equal(ours, references(digits, scales, canvas))


def test_odd_padding_puts_the_extra_zero_after_the_digit():
    assert canvas_offsets(28, 57) == (14, 15)
    assert canvas_offsets(28, 168) == (70, 70)
    digit = np.zeros((1, 28, 28), dtype=np.uint8)
    digit[0, 0, 0] = 255
    # At scale 1 the render is the padded canvas itself: the pixel lands at (14, 14), not (15, 15).
    out = scale_on_canvas(digit, np.array([1.0]), 57)
    assert np.flatnonzero(out[0]).tolist() == [14 * 57 + 14] and out[0, 14, 14] == 255


def test_each_sample_is_rendered_independently_of_its_batch():
    digits = noise_digits(40, seed=2)
    scales = np.geomspace(0.4, 11, 40)[np.random.default_rng(0).permutation(40)]
    batch = scale_on_canvas(digits, scales, 168)
    for i in (0, 17, 39):
        assert np.array_equal(
            batch[i], scale_on_canvas(digits[i : i + 1], scales[i : i + 1], 168)[0]
        )


def test_an_empty_batch_gives_an_empty_canvas_stack():
    out = scale_on_canvas(np.zeros((0, 28, 28), np.uint8), np.zeros(0), (40, 50))
    assert out.shape == (0, 40, 50) and out.dtype == np.uint8


# --- digit_box -----------------------------------------------------------------------------------


def test_digit_box_known_values():
    # s = 1: sample points are pixel centres (d = 0); taps x-1..x+2 reach the digit at 70..97.
    assert digit_box(np.array([1.0]), 28, 28, 168).tolist() == [[68, 99, 68, 99]]
    assert digit_box(np.array([1.0]), 28, 28, 168, "bilinear").tolist() == [[69, 98, 69, 98]]
    assert digit_box(np.array([1.0]), 28, 28, 168, "nearest").tolist() == [[70, 98, 70, 98]]
    # s = 11.3: 28 px become 316 > 168, so the box is the whole (cropping) canvas.
    assert digit_box(np.array([S_MAX]), 28, 28, 168).tolist() == [[0, 168, 0, 168]]
    # A rectangular digit on a rectangular canvas: rows and columns separately.
    box = digit_box(np.array([1.0]), 20, 28, (40, 30))
    assert box.tolist() == [[8, 31, 0, 30]]
    assert box.dtype == np.int64


def test_renders_are_exactly_zero_outside_digit_box_and_the_box_is_tight():
    digits = noise_digits(300, seed=3)
    scales = np.exp(np.random.default_rng(4).uniform(np.log(0.3), np.log(12), 300))
    # Bicubic's outer taps have negative weights, so a non-negative digit often leaves the
    # box's outermost row or column at 0 (measured: each edge non-zero in ~55% of the renders);
    # bilinear and nearest reach it (almost) always.
    least = {"bicubic": 0.45, "bilinear": 0.95, "nearest": 1.0}
    for canvas, interp in ((168, "bicubic"), (57, "bicubic"), (168, "bilinear"), (56, "nearest")):
        out = scale_on_canvas(digits, scales, canvas, interp)
        boxes = digit_box(scales, 28, 28, canvas, interp)
        edges = []
        for img, (y0, y1, x0, x1) in zip(out, boxes, strict=True):
            inside = np.zeros(img.shape, dtype=bool)
            inside[y0:y1, x0:x1] = True
            assert not img[~inside].any()
            crop = img[y0:y1, x0:x1]
            edges.append([crop[0].any(), crop[-1].any(), crop[:, 0].any(), crop[:, -1].any()])
        assert np.all(np.mean(edges, axis=0) >= least[interp])
        # Boxes grow with the scale and, with even margins, stay centred (up to a pixel of
        # rounding). An odd margin leaves the digit's centre half a pixel above and left of the
        # canvas centre, which scaling about the canvas centre multiplies by s.
        order = np.argsort(scales)
        assert np.all(np.diff(boxes[order, 1] - boxes[order, 0]) >= 0)
        assert np.all(np.diff(boxes[order, 3] - boxes[order, 2]) >= 0)
        if canvas % 2 == 0:
            assert np.all(np.abs(boxes[:, 0] + boxes[:, 1] - canvas) <= 1)
            assert np.all(np.abs(boxes[:, 2] + boxes[:, 3] - canvas) <= 1)


def test_digits_scaled_past_the_canvas_are_cropped():
    """s = 11.3 on 28 px gives a 316 px digit: the 168 canvas shows its centre only."""
    digits = fake_digits(np.random.default_rng(5), 20)
    scales = np.full(20, S_MAX)
    small = scale_on_canvas(digits, scales, 168)
    large = scale_on_canvas(digits, scales, 344)  # big enough to hold the whole digit
    centre = large[:, 88:256, 88:256]
    # Same picture: the positions of two canvases round differently in the last bits only.
    assert np.abs(small.astype(np.int16) - centre).max() <= 1
    assert np.mean(small == centre) > 0.999
    outside = large.copy()
    outside[:, 88:256, 88:256] = 0
    assert outside.reshape(20, -1).any(axis=1).sum() >= 15  # most digits did spill over
    assert np.array_equal(small, references(digits, scales, 168))


# --- torch renderer ------------------------------------------------------------------------------


@pytest.mark.parametrize("canvas", [56, 112, 168, 57, (45, 61)], ids=lambda c: f"canvas{c}")
@pytest.mark.parametrize("interp", ["bicubic", "bilinear", "nearest"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_torch_renderer_is_within_one_grey_level_of_numpy(digits, canvas, interp, dtype):
    rng = np.random.default_rng(13)
    scales = spread_scales(rng, 300)
    want = scale_on_canvas(digits[:300], scales, canvas, interp)
    got = scale_on_canvas_torch(
        torch.from_numpy(digits[:300]), torch.from_numpy(scales), canvas, interp, dtype
    )
    assert got.dtype == torch.uint8 and tuple(got.shape) == want.shape
    diff = np.abs(got.numpy().astype(np.int16) - want)
    assert diff.max() <= 1
    # Measured at most 4e-5 (float64) and 7e-4 (float32, bilinear on Fashion's flat areas) of
    # the pixels off by one; nearest is exact (no sums).
    bound = {torch.float64: 2e-4, torch.float32: 2e-3}[dtype]
    assert np.mean(diff) <= (0.0 if interp == "nearest" else bound)


def test_torch_renderer_float_input_and_zeros_outside_the_box():
    digits = noise_digits(100, seed=6)
    scales = np.exp(np.random.default_rng(6).uniform(np.log(0.3), np.log(12), 100))
    as_uint8 = scale_on_canvas_torch(torch.from_numpy(digits), torch.from_numpy(scales), 168)
    for dtype in (torch.float32, torch.float64):
        as_float = scale_on_canvas_torch(
            torch.from_numpy(digits).to(dtype), torch.from_numpy(scales), 168
        )
        assert torch.equal(as_uint8, as_float)
    boxes = digit_box(scales, 28, 28, 168)
    for img, (y0, y1, x0, x1) in zip(as_uint8.numpy(), boxes, strict=True):
        img = img.copy()
        img[y0:y1, x0:x1] = 0
        assert not img.any()
    want = scale_on_canvas(digits, scales, 168)
    assert np.abs(as_uint8.numpy().astype(np.int16) - want).max() <= 1


@pytest.mark.gpu
def test_torch_renderer_on_cuda_is_within_one_grey_level_of_numpy():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    digits = fake_digits(np.random.default_rng(8), 2000)
    scales = spread_scales(np.random.default_rng(9), 2000)
    want = scale_on_canvas(digits, scales, 168)
    for dtype in (torch.float64, torch.float32):
        got = scale_on_canvas_torch(
            torch.from_numpy(digits).cuda(), torch.from_numpy(scales).cuda(), 168, "bicubic", dtype
        )
        assert got.device.type == "cuda"
        diff = np.abs(got.cpu().numpy().astype(np.int16) - want)
        assert diff.max() <= 1 and np.mean(diff) <= 2e-3


# --- bad arguments -------------------------------------------------------------------------------

GOOD_DIGITS = np.zeros((2, 28, 28), dtype=np.uint8)
GOOD_SCALES = np.array([1.0, 2.0])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(digits=np.zeros((28, 28), np.uint8)), "digits"),
        (dict(digits=np.zeros((2, 28, 28), np.float32)), "digits"),
        (dict(digits=np.zeros((2, 0, 28), np.uint8)), "digits"),
        (dict(scales=np.array([1.0])), "scales"),
        (dict(scales=np.array([[1.0, 2.0]])), "scales"),
        (dict(scales=np.array([1.0, 0.0])), "scales"),
        (dict(scales=np.array([1.0, -2.0])), "scales"),
        (dict(scales=np.array([1.0, np.nan])), "scales"),
        (dict(scales=np.array([np.inf, 1.0])), "scales"),
        (dict(scales=np.array([1e-320, 1.0])), "scales"),
        (dict(scales=np.array(["1", "2"])), "scales"),
        (dict(canvas=27), "canvas"),
        (dict(canvas=(168, 20)), "canvas"),
        (dict(canvas=0), "canvas"),
        (dict(canvas=168.0), "canvas"),
        (dict(canvas=(168, 168, 1)), "canvas"),
        (dict(canvas=None), "canvas"),
        (dict(interpolation="lanczos"), "interpolation"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field):
    args = dict(digits=GOOD_DIGITS, scales=GOOD_SCALES, canvas=168, interpolation="bicubic")
    args.update(kwargs)
    with pytest.raises(InvalidParameterError, match=f"^{field}"):
        scale_on_canvas(**args)
    if field != "digits" and not (field == "scales" and args["scales"].dtype.kind == "U"):
        torch_args = dict(args, digits=torch.from_numpy(args["digits"]))
        torch_args["scales"] = torch.from_numpy(np.asarray(args["scales"]))
        with pytest.raises(InvalidParameterError, match=f"^{field}"):
            scale_on_canvas_torch(**torch_args)


def test_bad_torch_arguments_name_the_field():
    digits, scales = torch.zeros((2, 28, 28), dtype=torch.uint8), torch.tensor([1.0, 2.0])
    with pytest.raises(InvalidParameterError, match=r"^digits"):
        scale_on_canvas_torch(GOOD_DIGITS, scales)  # a numpy array, not a tensor
    with pytest.raises(InvalidParameterError, match=r"^digits"):
        scale_on_canvas_torch(digits[0], scales)
    with pytest.raises(InvalidParameterError, match=r"^digits"):
        scale_on_canvas_torch(digits.to(torch.int32), scales)
    with pytest.raises(InvalidParameterError, match=r"^scales"):
        scale_on_canvas_torch(digits, [1.0, 2.0])
    with pytest.raises(InvalidParameterError, match=r"^compute_dtype"):
        scale_on_canvas_torch(digits, scales, compute_dtype=torch.float16)
    empty = scale_on_canvas_torch(digits[:0], scales[:0], 56)
    assert tuple(empty.shape) == (0, 56, 56) and empty.dtype == torch.uint8


def test_bad_digit_box_arguments_name_the_field():
    with pytest.raises(InvalidParameterError, match=r"^h"):
        digit_box(GOOD_SCALES, 0, 28, 168)
    with pytest.raises(InvalidParameterError, match=r"^w"):
        digit_box(GOOD_SCALES, 28, 2.5, 168)
    with pytest.raises(InvalidParameterError, match=r"^canvas"):
        digit_box(GOOD_SCALES, 28, 28, 20)
    with pytest.raises(InvalidParameterError, match=r"^scales"):
        digit_box(np.array([[1.0]]), 28, 28, 168)
    with pytest.raises(InvalidParameterError, match=r"^interpolation"):
        digit_box(GOOD_SCALES, 28, 28, 168, "area")
