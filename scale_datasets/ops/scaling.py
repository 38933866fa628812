"""Batch scaling about the image centre, bit-identical to Pillow's affine transform.

MNIST-Scale is defined by what torchvision's ``RandomAffine(degrees=0, scale=(0.3, 1))`` does to a
PIL image: it hands Pillow the inverse affine matrix of a pure scaling about the exact centre and
Pillow resamples with ``Image.transform(size, AFFINE, data, resample)``. Rendering 62,000 digits
per realisation through a Python loop over PIL calls is slow, so this module re-implements that
one Pillow code path in vectorised numpy, reproducing Pillow's float64 operation order exactly so
that the uint8 output is bit-identical (checked against Pillow itself in ``tests/test_scaling.py``).

What Pillow (``src/libImaging/Geometry.c``) does for an affine transform with fill:

* Output pixel ``(x, y)`` samples the input at ``xin = a0 * (x + 0.5) + a1 * (y + 0.5) + a2`` (and
  ``yin`` likewise); a point outside ``[0, W) x [0, H)`` gives the fill (0).
* BICUBIC and BILINEAR (``ImagingGenericTransform``): subtract 0.5, floor, and run a 4-tap (2-tap)
  filter with indices clamped to the image, first along each needed input row, then once down the
  column of row results. The cubic is ``p1 + d*(p2 + d*(p3 + d*p4))`` with ``p2 = -v1 + v3``,
  ``p3 = 2*(v1 - v2) + v3 - v4``, ``p4 = -v1 + v2 - v3 + v4``: the Keys cubic with ``a = -1``
  (not the ``a = -0.5`` of ``Image.resize``). The row pass works on the pixel type (exact integers
  for "L", float32 arithmetic for "F"); the column pass in float64. "L" output is clipped to
  ``[0, 255]`` and *truncated* (not rounded) for bicubic, and truncated without clipping for
  bilinear (it cannot leave the range). "F" output is the float64 result cast to float32.
* NEAREST with ``a1 == a3 == 0`` takes the ``ImagingScaleAffine`` fast path: the sample position
  starts at ``a2 + a0 * 0.5`` and is advanced by repeated addition of ``a0`` (so it drifts from the
  multiplied-out position by round-off), then truncated to an index.

Each step below repeats those IEEE float64 operations in the same order (numpy's elementwise ops
round exactly like C's), so the same bits come out. Only the order of *independent* pixels
differs: the per-row pass is tabulated once per (image, row, tap position) and gathered.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..errors import InvalidParameterError

__all__ = [
    "Interpolation",
    "affine_coefficients",
    "pil_scale_about_centre",
    "scale_about_centre",
]

Interpolation = Literal["bicubic", "bilinear", "nearest"]

_INTERPOLATIONS: tuple[str, ...] = ("bicubic", "bilinear", "nearest")

# Soft cap on the float64 temporaries of one chunk. Small enough to stay near the CPU caches
# (measured fastest around a few MB for 28x28 digits), and bounded whatever the number of images.
_CHUNK_BYTES = 4 * 1024 * 1024


def affine_coefficients(
    scale: float, in_hw: tuple[int, int], canvas_hw: tuple[int, int]
) -> tuple[float, ...]:
    """The Pillow AFFINE ``data`` 6-tuple that shrinks/enlarges by ``scale`` about the centre.

    Pillow wants the inverse map (output pixel -> input position). The centre of the canvas maps
    to the centre of the input. For ``canvas_hw == in_hw`` this is bit-for-bit the matrix
    torchvision's ``F.affine(img, angle=0, translate=[0, 0], scale=scale, shear=[0, 0])`` passes
    to Pillow, which is what makes our renders identical to torchvision's ``RandomAffine``.
    """
    h, w = in_hw
    canvas_h, canvas_w = canvas_hw
    a0 = 1.0 / float(scale)
    a2 = a0 * (-(canvas_w / 2)) + (w / 2)
    a5 = a0 * (-(canvas_h / 2)) + (h / 2)
    return (a0, 0.0, a2, 0.0, a0, a5)


def _resolve_canvas(canvas: tuple[int, int] | int | None, h: int, w: int) -> tuple[int, int]:
    """Normalise ``canvas`` to (height, width), defaulting to the input size."""
    if canvas is None:
        return h, w
    if isinstance(canvas, (int, np.integer)) and not isinstance(canvas, bool):
        dims: tuple[object, ...] = (canvas, canvas)
    elif isinstance(canvas, (tuple, list)) and len(canvas) == 2:
        dims = tuple(canvas)
    else:
        raise InvalidParameterError(
            f"canvas must be an int or a (height, width) pair of ints, got {canvas!r}"
        )
    out: list[int] = []
    for d in dims:
        if not isinstance(d, (int, np.integer)) or isinstance(d, bool):
            raise InvalidParameterError(f"canvas sizes must be ints, got {canvas!r}")
        if d < 1:
            raise InvalidParameterError(f"canvas sizes must be >= 1, got {canvas!r}")
        out.append(int(d))
    return out[0], out[1]


def _validate(
    images: np.ndarray,
    scales: np.ndarray,
    canvas: tuple[int, int] | int | None,
    interpolation: str,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Check every argument up front so bad input fails with a message naming the field."""
    if interpolation not in _INTERPOLATIONS:
        raise InvalidParameterError(
            f"interpolation must be one of {', '.join(_INTERPOLATIONS)}, got {interpolation!r}"
        )
    images = np.asarray(images)
    if images.ndim != 3:
        raise InvalidParameterError(
            f"images must have shape (N, H, W), got {images.ndim} dimension(s)"
        )
    if images.dtype not in (np.uint8, np.float32, np.float64):
        raise InvalidParameterError(
            f"images must be uint8, float32 or float64, got dtype {images.dtype}"
        )
    n, h, w = images.shape
    if h < 1 or w < 1:
        raise InvalidParameterError(f"images must have H, W >= 1, got shape {images.shape}")
    scales_arr = np.asarray(scales)
    if scales_arr.ndim != 1 or scales_arr.shape[0] != n:
        raise InvalidParameterError(
            f"scales must have shape ({n},) to match images, got {scales_arr.shape}"
        )
    if not (np.issubdtype(scales_arr.dtype, np.floating) or np.issubdtype(scales_arr.dtype, np.integer)):
        raise InvalidParameterError(f"scales must be real numbers, got dtype {scales_arr.dtype}")
    s64 = scales_arr.astype(np.float64)
    with np.errstate(divide="ignore", over="ignore"):
        bad = ~(np.isfinite(s64) & (s64 > 0) & np.isfinite(1.0 / s64))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidParameterError(
            f"scales must be finite and > 0, got scales[{i}] = {scales_arr[i]!r}"
        )
    return images, s64, _resolve_canvas(canvas, h, w)


def _chunk_size(h: int, w: int, ch: int, cw: int) -> int:
    """Images per chunk so the float64 temporaries stay around ``_CHUNK_BYTES``."""
    # Worst case (no cropping): four float64 tap copies plus ~4 temporaries per pass.
    per_image = 8 * 8 * (w * h + cw * h + ch * cw) + 64 * (ch + cw)
    return max(1, _CHUNK_BYTES // per_image)


def scale_about_centre(
    images: np.ndarray,
    scales: np.ndarray,
    canvas: tuple[int, int] | int | None = None,
    interpolation: Interpolation = "bicubic",
) -> np.ndarray:
    """Scale each image about its centre by its own factor onto a fill-0 canvas.

    Bit-identical to ``PIL.Image.transform(canvas, AFFINE, affine_coefficients(s, ...), resample)``
    on mode "L" images for uint8 input, so datasets rendered here equal those rendered through
    torchvision's ``RandomAffine`` on PIL images, but far faster (whole batches in numpy).

    Args:
        images: ``(N, H, W)`` uint8 (Pillow mode "L" semantics: clipped, truncated) or float32 /
            float64 (mode "F" semantics: no clipping or quantisation; float64 runs the same
            algorithm at float64 precision, float32 reproduces Pillow's float32 row pass).
        scales: ``(N,)`` positive finite factors; ``< 1`` shrinks, ``> 1`` enlarges (the canvas
            crops). Each is converted to float64 before use, as Python would.
        canvas: output ``(height, width)``, or one int for a square canvas; default the input size.
        interpolation: "bicubic", "bilinear" or "nearest" (Pillow's filters of those names).

    Returns:
        ``(N, canvas_h, canvas_w)`` array of the input dtype.

    Raises:
        InvalidParameterError: bad shape, dtype, scale, canvas or interpolation.
    """
    images, s64, (ch, cw) = _validate(images, scales, canvas, interpolation)
    n, h, w = images.shape
    out = np.zeros((n, ch, cw), dtype=images.dtype)
    if n == 0:
        return out
    # Neighbouring scales have nearly the same footprint on the canvas, so chunks of sorted scales
    # can be cropped to the union of their footprints: less work for strong shrinking.
    order = np.argsort(s64, kind="stable")
    step = _chunk_size(h, w, ch, cw)
    for start in range(0, n, step):
        idx = order[start : start + step]
        _render_chunk(images[idx], s64[idx], ch, cw, interpolation, out, idx)
    return out


def _render_chunk(
    imgs: np.ndarray,
    s: np.ndarray,
    ch: int,
    cw: int,
    interpolation: str,
    out: np.ndarray,
    idx: np.ndarray,
) -> None:
    """Render one chunk of images and scatter it into ``out[idx]``."""
    _, h, w = imgs.shape
    a0 = 1.0 / s
    a2 = a0 * (-(cw / 2)) + (w / 2)
    a5 = a0 * (-(ch / 2)) + (h / 2)
    if interpolation == "nearest":
        xo = _accumulated_positions(a0, a2, cw)
        yo = _accumulated_positions(a0, a5, ch)
    else:
        # a0*(x+0.5) + a1*(y+0.5) + a2 with a1 == 0: the middle term is +0.0, which changes no bits.
        xo = a0[:, None] * (np.arange(cw) + 0.5) + a2[:, None]
        yo = a0[:, None] * (np.arange(ch) + 0.5) + a5[:, None]
    valid_x = (xo >= 0.0) & (xo < w)
    valid_y = (yo >= 0.0) & (yo < h)
    cols = np.flatnonzero(valid_x.any(axis=0))
    rows = np.flatnonzero(valid_y.any(axis=0))
    if cols.size == 0 or rows.size == 0:
        return  # everything samples outside the input: all fill
    x_lo, x_hi = int(cols[0]), int(cols[-1]) + 1
    y_lo, y_hi = int(rows[0]), int(rows[-1]) + 1
    xo, valid_x = xo[:, x_lo:x_hi], valid_x[:, x_lo:x_hi]
    yo, valid_y = yo[:, y_lo:y_hi], valid_y[:, y_lo:y_hi]

    if interpolation == "nearest":
        block = _nearest(imgs, xo, yo)
    else:
        block = _separable(imgs, xo, yo, interpolation)
    valid = valid_y[:, :, None] & valid_x[:, None, :]
    block = np.where(valid, block, np.zeros((), dtype=out.dtype))
    out[idx, y_lo:y_hi, x_lo:x_hi] = block


def _accumulated_positions(a0: np.ndarray, offset: np.ndarray, size: int) -> np.ndarray:
    """Sample positions of Pillow's NEAREST scale path: start, then ``+= a0`` per pixel.

    ``np.cumsum`` (``add.accumulate``) adds strictly left to right, matching the C loop's drift.
    """
    pos = np.empty((a0.shape[0], size), dtype=np.float64)
    pos[:, 0] = offset + a0 * 0.5
    pos[:, 1:] = a0[:, None]
    np.cumsum(pos, axis=1, out=pos)
    return pos


def _nearest(imgs: np.ndarray, xo: np.ndarray, yo: np.ndarray) -> np.ndarray:
    """Pick the pixel whose index is the truncated sample position (valid ones are >= 0)."""
    m, h, w = imgs.shape
    xi = np.clip(xo, 0.0, w - 1).astype(np.intp)
    yi = np.clip(yo, 0.0, h - 1).astype(np.intp)
    row_start = (yi + (np.arange(m) * h)[:, None]) * w
    return imgs.reshape(-1).take(row_start[:, :, None] + xi[:, None, :])


def _split_positions(pos: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's ``pos -= 0.5; i = floor(pos); d = pos - i``, with ``i`` clamped to ``[-1, size-1]``.

    Valid positions lie in ``[0, size)`` and are unchanged by the pre-clip; the clip only keeps
    out-of-range (masked) positions from overflowing the integer cast.
    """
    p = np.clip(pos, -1.0, float(size)) - 0.5
    base = np.floor(p)
    frac = p - base
    return np.clip(base.astype(np.intp), -1, size - 1), frac


def _gather_taps(src: np.ndarray, base: np.ndarray, taps: range) -> list[np.ndarray]:
    """Rows ``src[i, clamp(base[i, j] + t)]`` for each tap ``t``: a list of ``(m, q, K)`` arrays.

    ``src`` is ``(m, L, K)``; indices are clamped to ``[0, L)``, which is what Pillow's XCLIP and
    "reuse the previous row when out of range" amount to. Whole rows are copied (``take`` on
    axis 0), far cheaper than gathering single elements.
    """
    m, length, k = src.shape
    idx = base[:, None, :] + np.arange(taps.start, taps.stop)[None, :, None]
    np.clip(idx, 0, length - 1, out=idx)
    idx += (np.arange(m) * length)[:, None, None]
    rows = src.reshape(m * length, k).take(idx.reshape(-1), axis=0)
    rows = rows.reshape(m, len(taps), base.shape[1], k)
    return [rows[:, t] for t in range(len(taps))]


def _filter(v: list[np.ndarray], d: np.ndarray) -> np.ndarray:
    """Pillow's BICUBIC / BILINEAR macro on tap values ``v`` at fraction ``d``, in float64.

    The coefficients are formed in the dtype of ``v`` (as C does in the pixel type: exact for
    integers, float32 for mode "F"), then the polynomial is evaluated in float64, Horner order:
    ``p1 + d*(p2 + d*(p3 + d*p4))`` with ``p2 = -v1 + v3``, ``p3 = 2*(v1 - v2) + v3 - v4``,
    ``p4 = -v1 + v2 - v3 + v4`` (Keys cubic, a = -1), or ``a + (b - a)*d``. Rewrites used are
    bit-exact in IEEE arithmetic: ``-a + b == b - a`` and ``2*(a - b) == (b - a)*-2``.
    """
    if len(v) == 2:
        v1, v2 = v
        acc = np.multiply(v2 - v1, d)
        acc += v1
        return acc
    v1, v2, v3, v4 = v
    e = v2 - v1
    p4 = e - v3
    p4 += v4
    p3 = e
    p3 *= -2
    p3 += v3
    p3 -= v4
    p2 = v3 - v1
    acc = np.multiply(p4, d)
    acc += p3
    acc *= d
    acc += p2
    acc *= d
    acc += v2
    return acc


def _separable(imgs: np.ndarray, xo: np.ndarray, yo: np.ndarray, interpolation: str) -> np.ndarray:
    """Bicubic/bilinear: the row pass then the column pass, exactly as Pillow orders them."""
    m, h, w = imgs.shape
    taps = range(-1, 3) if interpolation == "bicubic" else range(0, 2)
    bx, dx = _split_positions(xo, w)
    by, dy = _split_positions(yo, h)
    # Only the input rows the column pass can touch; clamping to this band equals clamping to
    # the image, because the band is the clamped span of all the taps.
    r_lo = min(max(int(by.min()) + taps.start, 0), h - 1)
    r_hi = min(max(int(by.max()) + taps.stop - 1, 0), h - 1) + 1
    # Row pass with columns as rows of the transposed band: (m, W, rows) -> (m, nx, rows).
    band = np.ascontiguousarray(imgs[:, r_lo:r_hi, :].transpose(0, 2, 1))
    if band.dtype == np.uint8:
        band = band.astype(np.float64)  # integer tap arithmetic is exact in float64
    row_pass = _filter(_gather_taps(band, bx, taps), dx[:, :, None])
    # Column pass over the float64 row results: (m, rows, nx) -> (m, ny, nx).
    rows = np.ascontiguousarray(row_pass.transpose(0, 2, 1))
    val = _filter(_gather_taps(rows, by - r_lo, taps), dy[:, :, None])
    if imgs.dtype == np.uint8:
        if interpolation == "bicubic":
            np.clip(val, 0.0, 255.0, out=val)  # <= 0 -> 0, >= 255 -> 255, else truncate
        return val.astype(np.uint8)  # C's (UINT8) cast truncates
    return val.astype(imgs.dtype)


def pil_scale_about_centre(
    image: np.ndarray,
    scale: float,
    canvas: tuple[int, int] | int | None = None,
    interpolation: Interpolation = "bicubic",
) -> np.ndarray:
    """Reference implementation: one image through Pillow itself (for tests and benchmarks).

    uint8 images go through mode "L" and return uint8; float images through mode "F" and return
    float32 (Pillow has no float64 mode). Fill is 0, as in ``scale_about_centre``.
    """
    from PIL import Image

    arr = np.asarray(image)
    if arr.ndim != 2:
        raise InvalidParameterError(f"image must have shape (H, W), got {arr.shape}")
    if interpolation not in _INTERPOLATIONS:
        raise InvalidParameterError(
            f"interpolation must be one of {', '.join(_INTERPOLATIONS)}, got {interpolation!r}"
        )
    h, w = arr.shape
    ch, cw = _resolve_canvas(canvas, h, w)
    resample = {
        "bicubic": Image.Resampling.BICUBIC,
        "bilinear": Image.Resampling.BILINEAR,
        "nearest": Image.Resampling.NEAREST,
    }[interpolation]
    if arr.dtype == np.uint8:
        pil = Image.fromarray(np.ascontiguousarray(arr))
    else:
        pil = Image.fromarray(np.ascontiguousarray(arr, dtype=np.float32))
    data = affine_coefficients(float(scale), (h, w), (ch, cw))
    return np.asarray(pil.transform((cw, ch), Image.Transform.AFFINE, data, resample))
