"""Scale digits about the centre of a larger zero canvas, rendering only the digit's support.

Dynamic Scale MNIST (Basting et al.; PROTOCOLS.md section 4) zero-pads each 28x28 digit onto a
``canvas`` x ``canvas`` image (168 by default) and scales it by ``s`` about the canvas centre with
Pillow's affine transform (BICUBIC, fill 0, cropped to the canvas). The reference for one sample
is

    Image.fromarray(padded).transform((cw, ch), Image.AFFINE,
                                      affine_coefficients(s, (ch, cw), (ch, cw)), Image.BICUBIC)

where ``padded`` holds the digit at rows ``(ch - h) // 2 ...`` and columns ``(cw - w) // 2 ...``
(an odd margin puts the extra zero row / column at the bottom / right). Rendering the whole
padded canvas is wasteful: outside the scaled digit's box (``digit_box``) every output pixel is
exactly 0, and inside it the filter only reads a few taps around the digit.

``scale_on_canvas`` is bit-identical to that reference (not merely within a grey level): the
sample positions are computed in *canvas* coordinates with the reference's own coefficients, so
the fractions ``d`` are the same bits; only the integer tap indices are shifted onto a small
array, the digit with a zero margin of one pixel (where the canvas has one). Pillow clamps taps
to the canvas edge; a clamped tap reads canvas padding (0) exactly as the clamped tap on the small
array reads its zero margin, and where the canvas has no margin (canvas == digit size) both clamp
to the same digit edge pixel. The row and column passes are ``scaling``'s, i.e. Pillow's
operation order. (Merely padding the digit and calling ``scale_about_centre`` on it, whose map
sends the canvas centre to the padded digit's centre, rounds the positions differently in the
last bits for about half of the pixels; on 2,400 renders no output pixel changed, but nothing
guarantees it.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidParameterError
from .pil_affine import Interpolation, check_interpolation, resolve_canvas
from .scaling import (
    _accumulated_positions,
    _nearest,
    _separable,
    _Workspace,
    check_digits,
    check_scales,
)

__all__ = ["canvas_offsets", "digit_box", "scale_on_canvas"]

# Scratch budget of one chunk of samples (sorted by scale, cropped to the union of their boxes).
# Same order as scaling's _CHUNK_BYTES: large enough to amortise numpy's per-call overhead, small
# enough to stay near the CPU caches.
_CHUNK_BYTES = 6 * 1024 * 1024
# At most this many samples per chunk (tiny boxes: shrunk digits).
_MAX_CHUNK = 1024

# Taps read per axis, relative to floor(position - 0.5) (bicubic, bilinear) or to the truncated
# position (nearest).
_TAPS = {"bicubic": (-1, 2), "bilinear": (0, 1), "nearest": (0, 0)}


def canvas_offsets(size: int, canvas: int) -> tuple[int, int]:
    """``(before, after)``: the zero rows (columns) put before and after the digit on the canvas.

    ``before = (canvas - size) // 2``: with an odd difference the extra zero goes after
    (bottom / right), as ``np.pad`` with ``((canvas - size) // 2, canvas - size - that)``.
    """
    before = (canvas - size) // 2
    return before, canvas - size - before


@dataclass(frozen=True)
class _Axis:
    """Sample geometry along one axis for every sample (arrays ``(N, canvas)``).

    ``taps`` are indices into the digit padded by ``margin`` zeros on each side (already
    clamped to it), ``frac`` the fractions ``d`` (unused for nearest), ``lo``/``hi`` the box:
    the half-open range of output positions whose sample point is inside the canvas and whose
    taps reach the digit. Outside it the reference is exactly 0.
    """

    taps: np.ndarray  # (ntaps, N, canvas) intp
    frac: np.ndarray  # (N, canvas) float64
    lo: np.ndarray  # (N,) int
    hi: np.ndarray  # (N,) int


def _margins(size: int, canvas: int) -> tuple[int, int]:
    """Zero margins of the small source: one pixel where the canvas has padding, else none."""
    before, after = canvas_offsets(size, canvas)
    return min(1, before), min(1, after)


def _axis(s: np.ndarray, size: int, canvas: int, interpolation: str) -> _Axis:
    """Positions of the reference (digit on a ``canvas``-long axis) mapped onto the small source.

    The positions are Pillow's, in canvas coordinates, with the reference coefficients
    (``affine_coefficients(s, (C, C), (C, C))``: ``a0 = 1 / s``, ``a2 = a0 * (-C / 2) + C / 2``;
    same operations, same bits). Tap ``k`` of the canvas is clamped to ``[0, C - 1]`` by Pillow
    and then read from the padded canvas; on the source (the digit with margins ``m0``, ``m1``)
    that is index ``clamp(k - (before - m0), 0, size + m0 + m1 - 1)``: one clamp does both, as
    the source's range lies inside the shifted canvas range.
    """
    before, _ = canvas_offsets(size, canvas)
    m0, m1 = _margins(size, canvas)
    shift = before - m0
    length = size + m0 + m1
    a0 = 1.0 / s
    a2 = a0 * (-(canvas / 2)) + canvas / 2
    first, last = _TAPS[interpolation]
    with np.errstate(over="ignore", invalid="ignore"):
        if interpolation == "nearest":
            pos = _accumulated_positions(a0, a2, canvas)
            valid = (pos >= 0.0) & (pos < canvas)
            base = np.fmin(np.fmax(pos, 0.0), canvas - 1.0).astype(np.intp)  # trunc == floor
            frac = np.zeros((0, 0))
        else:
            pos = a0[:, None] * (np.arange(canvas) + 0.5) + a2[:, None]
            valid = (pos >= 0.0) & (pos < canvas)
            # Pillow: pos -= 0.5; i = floor(pos); d = pos - i. The pre-clamp only keeps invalid
            # (masked) positions from overflowing the integer cast; valid ones are unchanged.
            p = np.fmin(np.fmax(pos, -1.0), float(canvas)) - 0.5
            floor = np.floor(p)
            frac = p - floor
            base = floor.astype(np.intp)
    offsets = np.arange(first, last + 1)[:, None, None]
    taps = np.clip(base[None] + offsets - shift, 0, length - 1)
    # The box: valid positions whose (canvas-clamped) taps reach the digit's pixels.
    reach_lo = np.clip(base + first, 0, canvas - 1)
    reach_hi = np.clip(base + last, 0, canvas - 1)
    inside = valid & (reach_hi >= before) & (reach_lo <= before + size - 1)
    has = inside.any(axis=1)
    lo = np.where(has, inside.argmax(axis=1), 0)
    hi = np.where(has, canvas - inside[:, ::-1].argmax(axis=1), 0)
    return _Axis(taps=taps, frac=frac, lo=lo, hi=hi)


def check_canvas(canvas: tuple[int, int] | int, h: int, w: int) -> tuple[int, int]:
    """``canvas`` as (height, width), at least the digit's size (the digit is padded onto it)."""
    if canvas is None:
        raise InvalidParameterError("canvas must be an int or a (height, width) pair, got None")
    ch, cw = resolve_canvas(canvas, h, w)
    if ch < h or cw < w:
        raise InvalidParameterError(
            f"canvas must be at least the digit size {h}x{w} (the digit is zero-padded onto it), "
            f"got {ch}x{cw}"
        )
    return ch, cw


def digit_box(
    scales: np.ndarray,
    h: int,
    w: int,
    canvas: tuple[int, int] | int = 168,
    interpolation: Interpolation = "bicubic",
) -> np.ndarray:
    """Per sample, the output box ``(y0, y1, x0, x1)`` (half-open) outside which the render is 0.

    The box holds the output pixels whose sample point lies on the canvas and whose filter taps
    reach the ``h`` x ``w`` digit: outside it ``scale_on_canvas`` (and the reference) is exactly
    0 whatever the digit. It depends only on the scale, the sizes and the filter: the exact
    reach of the filter, so every edge of it can be non-zero (bicubic's outer taps weigh
    negatively, though, so a non-negative digit often leaves its outermost row or column at 0).
    An empty box has ``y0 == y1`` or ``x0 == x1``. With an odd margin the digit's centre is half
    a pixel above / left of the canvas centre, so the box drifts by ``s / 2`` pixels as it grows.

    Returns:
        ``(N, 4)`` int64 array, columns y0, y1, x0, x1.
    """
    check_interpolation(interpolation)
    for name, value in (("h", h), ("w", w)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise InvalidParameterError(f"{name} must be an int >= 1, got {value!r}")
    ch, cw = check_canvas(canvas, int(h), int(w))
    s64 = check_scales(scales, None)
    ys = _axis(s64, int(h), ch, interpolation)
    xs = _axis(s64, int(w), cw, interpolation)
    return np.stack([ys.lo, ys.hi, xs.lo, xs.hi], axis=1).astype(np.int64)


def _chunks(box_h: np.ndarray, box_w: np.ndarray, src_h: int, src_w: int) -> list[tuple[int, int]]:
    """Consecutive ``[start, stop)`` ranges of the (scale-sorted) samples for one chunk each.

    A chunk is cropped to the union of its boxes; with sorted scales that is about the box of
    its last (largest) sample, so a chunk grows while ``count x cost(last)`` fits the budget.
    """
    # float64 scratch of _separable per sample for a bh x bw crop (as scaling._chunk_size):
    # source band, taps and temporaries of the row pass (bw x source rows) and of the column
    # pass (bh x bw), plus the uint8 crop.
    cost = 8 * (src_h * src_w + 8 * box_w * src_h + 7 * box_h * box_w) + 2 * box_h * box_w
    cost = np.maximum.accumulate(cost)  # a chunk costs at least its largest member
    out: list[tuple[int, int]] = []
    n = box_h.shape[0]
    start = 0
    while start < n:
        window = cost[start : start + _MAX_CHUNK]
        fits = np.arange(1, window.shape[0] + 1) * window <= _CHUNK_BYTES
        stop = start + (window.shape[0] if fits.all() else max(1, int(np.argmin(fits))))
        out.append((start, stop))
        start = stop
    return out


def scale_on_canvas(
    digits: np.ndarray,
    scales: np.ndarray,
    canvas: tuple[int, int] | int = 168,
    interpolation: Interpolation = "bicubic",
) -> np.ndarray:
    """Scale each digit, zero-padded onto ``canvas``, about the canvas centre by its own factor.

    Bit-identical to Pillow on the padded canvas (the module docstring's reference), computed
    only inside each sample's ``digit_box``.

    Args:
        digits: ``(N, h, w)`` uint8 base digits.
        scales: ``(N,)`` positive finite factors (converted to float64, as Python would).
        canvas: the padded canvas and output size, an int (square) or ``(height, width)``; at
            least the digit size. The digit sits at rows ``(ch - h) // 2 ...`` and columns
            ``(cw - w) // 2 ...``; digits scaled past the canvas are cropped.
        interpolation: "bicubic" (the protocol), "bilinear" or "nearest" (Pillow's filters).

    Returns:
        ``(N, canvas_h, canvas_w)`` uint8.

    Raises:
        InvalidParameterError: bad digits, scales, canvas or interpolation (the message names
            the field).
    """
    check_interpolation(interpolation)
    digits = check_digits(digits)
    n, h, w = digits.shape
    ch, cw = check_canvas(canvas, h, w)
    s64 = check_scales(scales, n)
    out = np.zeros((n, ch, cw), dtype=np.uint8)
    if n == 0:
        return out
    (mt, mb), (ml, mr) = _margins(h, ch), _margins(w, cw)
    source = np.zeros((n, h + mt + mb, w + ml + mr), dtype=np.uint8)
    source[:, mt : mt + h, ml : ml + w] = digits
    order = np.argsort(s64, kind="stable")
    s_sorted = s64[order]
    ys = _axis(s_sorted, h, ch, interpolation)
    xs = _axis(s_sorted, w, cw, interpolation)
    # Where the canvas has >= 2 zero pixels around the digit, pixels of a chunk's crop outside a
    # sample's own box read only zero taps (or are outside the canvas and read the margin), so
    # they come out exactly 0 without masking.
    pads = canvas_offsets(h, ch) + canvas_offsets(w, cw)
    needs_mask = min(pads) < 2
    ws = _Workspace()
    for start, stop in _chunks(ys.hi - ys.lo, xs.hi - xs.lo, *source.shape[1:]):
        y0, y1 = int(ys.lo[start:stop].min()), int(ys.hi[start:stop].max())
        x0, x1 = int(xs.lo[start:stop].min()), int(xs.hi[start:stop].max())
        if y0 >= y1 or x0 >= x1:
            continue  # nothing of these digits lands on the canvas
        idx = order[start:stop]
        sl = slice(start, stop)
        crop = ws.get("crop", (stop - start, y1 - y0, x1 - x0), np.uint8)
        ty = ys.taps[:, sl, y0:y1]
        tx = xs.taps[:, sl, x0:x1]
        if interpolation == "nearest":
            _nearest(source, idx, tx[0], ty[0], crop, ws)
        else:
            rows = (int(ty.min()), int(ty.max()) + 1)
            _separable(
                source,
                idx,
                (tx, xs.frac[sl, x0:x1]),
                (ty, ys.frac[sl, y0:y1]),
                rows,
                interpolation,
                crop,
                ws,
            )
        if needs_mask:
            yy = np.arange(y0, y1)
            xx = np.arange(x0, x1)
            out_y = (yy < ys.lo[sl, None]) | (yy >= ys.hi[sl, None])
            out_x = (xx < xs.lo[sl, None]) | (xx >= xs.hi[sl, None])
            np.copyto(crop, 0, where=out_y[:, :, None] | out_x[:, None, :])
        out[idx, y0:y1, x0:x1] = crop
    return out
