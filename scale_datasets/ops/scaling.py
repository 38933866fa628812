"""Batch scaling about the image centre, bit-identical to Pillow's affine transform.

MNIST-Scale is defined by what torchvision's ``RandomAffine(degrees=0, scale=(0.3, 1))`` does to a
PIL image: it hands Pillow the inverse affine matrix of a pure scaling about the centre (the exact
one, or torchvision < 0.9's half-pixel-off one: ``pil_affine.CENTRES``) and Pillow resamples with
``Image.transform(size, AFFINE, data, resample)``. Rendering 62,000 digits per realisation
through a Python loop over PIL calls is slow, so this module re-implements that one Pillow code
path in vectorised numpy, reproducing Pillow's float64 operation order exactly so that the uint8
output is bit-identical (checked against Pillow itself in ``tests/test_scaling.py``).

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

Each step below repeats those IEEE operations in the same order (numpy's elementwise ops round
exactly like C's, and nothing is fused or reassociated), so the same bits come out; only the order
in which *independent* pixels are computed differs. Speed comes from batching: images are sorted
by scale and processed in small chunks (sized to stay in cache) cropped to the chunk's footprint
on the canvas, with scratch buffers reused across chunks.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidParameterError
from .pil_affine import (
    CENTRES,
    Centre,
    Interpolation,
    affine_coefficients,
    check_centre,
    check_interpolation,
    fixed_points,
    pil_scale_about_centre,
    resolve_canvas,
)

__all__ = [
    "CENTRES",
    "Centre",
    "Interpolation",
    "affine_coefficients",
    "pil_scale_about_centre",
    "scale_about_centre",
]


# Scratch budget of one chunk (uncropped bound), bounded whatever the number of images. Chunks
# must be big enough to amortise numpy's per-call overhead (~100 calls per chunk) yet stay near
# the CPU caches; ~60 MNIST digits per chunk measured fastest (30 and 120 were ~15% slower).
_CHUNK_BYTES = 6 * 1024 * 1024
# Chunks whose geometry is computed together (amortises per-call numpy overhead).
_CHUNKS_PER_BLOCK = 64
# Below this many images Pillow itself is faster than the batch machinery (~0.3 ms fixed cost per
# call against ~0.07 ms per 28x28 image through Pillow), e.g. per-sample train-time augmentation.
# Same bits either way; float64 always takes the numpy path (Pillow has no float64 mode).
_SMALL_BATCH = 6

_TAPS = {"bicubic": range(-1, 3), "bilinear": range(0, 2)}


def check_digits(digits: np.ndarray) -> np.ndarray:
    """``digits`` as a uint8 (N, h, w) array with h, w >= 1 (one-line error naming the field)."""
    digits = np.asarray(digits)
    if digits.ndim != 3:
        raise InvalidParameterError(
            f"digits must have shape (N, h, w), got {digits.ndim} dimension(s)"
        )
    if digits.dtype != np.uint8:
        raise InvalidParameterError(f"digits must be uint8, got dtype {digits.dtype}")
    if digits.shape[1] < 1 or digits.shape[2] < 1:
        raise InvalidParameterError(f"digits must have h, w >= 1, got shape {digits.shape}")
    return digits


def check_scales(scales: np.ndarray, n: int | None) -> np.ndarray:
    """``scales`` as float64, each finite and > 0, of shape ``(n,)`` (any 1-D when n is None)."""
    scales_arr = np.asarray(scales)
    if scales_arr.ndim != 1 or (n is not None and scales_arr.shape[0] != n):
        want = "(N,)" if n is None else f"({n},) to match the images"
        raise InvalidParameterError(f"scales must have shape {want}, got {scales_arr.shape}")
    if not (
        np.issubdtype(scales_arr.dtype, np.floating) or np.issubdtype(scales_arr.dtype, np.integer)
    ):
        raise InvalidParameterError(f"scales must be real numbers, got dtype {scales_arr.dtype}")
    s64 = scales_arr.astype(np.float64)
    with np.errstate(divide="ignore", over="ignore"):
        bad = ~(np.isfinite(s64) & (s64 > 0) & np.isfinite(1.0 / s64))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidParameterError(
            f"scales must be finite and > 0, got scales[{i}] = {scales_arr[i]!r}"
        )
    return s64


def _validate(
    images: np.ndarray,
    scales: np.ndarray,
    canvas: tuple[int, int] | int | None,
    interpolation: str,
    centre: str,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Check every argument up front so bad input fails with a message naming the field."""
    check_centre(centre)
    check_interpolation(interpolation)
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
    s64 = check_scales(scales, n)
    return images, s64, resolve_canvas(canvas, h, w)


def _chunk_size(h: int, w: int, ch: int, cw: int) -> int:
    """Images per chunk so the reused scratch stays around ``_CHUNK_BYTES``."""
    # float64: band copy, 4 taps + 3 temporaries in the row pass, transposed copy, 4 taps +
    # 3 temporaries in the column pass; index arrays, masks and outputs are small next to these.
    per_image = 8 * (w * h + 8 * cw * h + 7 * ch * cw) + 2 * ch * cw
    return max(1, _CHUNK_BYTES // per_image)


class _Workspace:
    """Named scratch arrays reused from chunk to chunk.

    Fresh large temporaries on every chunk cost more than the arithmetic: the allocator hands
    big blocks back to the OS and every reuse page-faults again (measured ~3x slower for
    bicubic). Each buffer grows to the largest chunk (geometrically) and is then recycled.
    """

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """An uninitialised C-contiguous array of ``shape``/``dtype`` backed by buffer ``name``."""
        size = math.prod(shape)
        buf = self._bufs.get(name)
        if buf is None or buf.dtype != dtype or buf.size < size:
            # Crops grow along the sorted scales: grow geometrically so reallocations stay rare.
            grown = 2 * buf.size if buf is not None and buf.dtype == dtype else 0
            buf = np.empty(max(size, grown, 1), dtype=dtype)
            self._bufs[name] = buf
        return buf[:size].reshape(shape)


class _Geometry:
    """Sample positions of a block of images (sorted by scale) and the crop of each chunk.

    Everything here depends only on the scales, so it is computed for many chunks at once.
    Position arrays are ``(B, canvas_w)`` / ``(B, canvas_h)``; crops are Python lists per chunk.
    """

    def __init__(
        self,
        s: np.ndarray,
        hw: tuple[int, int],
        canvas_hw: tuple[int, int],
        interp: str,
        step: int,
        centre: Centre,
    ) -> None:
        with np.errstate(over="ignore", invalid="ignore"):
            self._compute(s, hw, canvas_hw, interp, step, centre)

    def _compute(
        self,
        s: np.ndarray,
        hw: tuple[int, int],
        canvas_hw: tuple[int, int],
        interp: str,
        step: int,
        centre: Centre,
    ) -> None:
        """Fill in the attributes (see the class docstring)."""
        h, w = hw
        ch, cw = canvas_hw
        # affine_coefficients, vectorised over the scales (same operations, same bits).
        out_x, out_y, in_x, in_y = fixed_points(hw, canvas_hw, centre)
        a0 = 1.0 / s
        a2 = a0 * (-out_x) + in_x
        a5 = a0 * (-out_y) + in_y
        if interp == "nearest":
            xo = _accumulated_positions(a0, a2, cw)
            yo = _accumulated_positions(a0, a5, ch)
        else:
            # a0*(x+0.5) + a1*(y+0.5) + a2 with a1 == 0: the middle term is +0.0, a no-op.
            xo = a0[:, None] * (np.arange(cw) + 0.5) + a2[:, None]
            yo = a0[:, None] * (np.arange(ch) + 0.5) + a5[:, None]
        # Pillow fills wherever the sample point is outside [0, size).
        valid_x = (xo >= 0.0) & (xo < w)
        valid_y = (yo >= 0.0) & (yo < h)
        self.inv_x = ~valid_x
        self.inv_y = ~valid_y
        starts = np.arange(0, s.shape[0], step)
        x_first, x_last = _valid_span(valid_x)
        y_first, y_last = _valid_span(valid_y)
        self.x_lo = np.minimum.reduceat(x_first, starts).tolist()
        self.x_hi = np.maximum.reduceat(x_last, starts).tolist()
        self.y_lo = np.minimum.reduceat(y_first, starts).tolist()
        self.y_hi = np.maximum.reduceat(y_last, starts).tolist()
        # A chunk whose images all share the same valid span has nothing to mask in its crop.
        same = (
            (np.maximum.reduceat(x_first, starts) == self.x_lo)
            & (np.minimum.reduceat(x_last, starts) == self.x_hi)
            & (np.maximum.reduceat(y_first, starts) == self.y_lo)
            & (np.minimum.reduceat(y_last, starts) == self.y_hi)
        )
        self.needs_mask = (~same).tolist()
        if interp == "nearest":
            # Valid positions are >= 0, where C's (int) truncation is the floor.
            self.tx = _clamp(xo, 0.0, w - 1).astype(np.intp)
            self.ty = _clamp(yo, 0.0, h - 1).astype(np.intp)
            return
        bx, self.dx = _split_positions(xo, w)
        by, self.dy = _split_positions(yo, h)
        # Tap indices clamped to the image: what Pillow's XCLIP and "reuse the previous row when
        # out of range" amount to. Shape (taps, B, canvas size).
        taps = _TAPS[interp]
        offsets = np.arange(taps.start, taps.stop)[:, None, None]
        self.tx = _clamp(bx[None, :, :] + offsets, 0, w - 1)
        self.ty = _clamp(by[None, :, :] + offsets, 0, h - 1)
        # Input rows the column pass can need for a valid pixel, per chunk. Taps of valid pixels
        # fall inside this band; the others are masked anyway.
        rows = np.arange(s.shape[0])
        has = y_first < y_last
        first = np.where(has, by[rows, np.minimum(y_first, ch - 1)], h)
        last = np.where(has, by[rows, np.maximum(y_last - 1, 0)], -h)
        r_lo = _clamp(first + taps.start, 0, h - 1)
        r_hi = _clamp(last + (taps.stop - 1), 0, h - 1) + 1
        self.r_lo = np.minimum.reduceat(r_lo, starts).tolist()
        self.r_hi = np.maximum.reduceat(r_hi, starts).tolist()


def _clamp(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``np.clip`` without its Python-level overhead; NaN (from absurd scales) maps to ``lo``."""
    return np.fmin(np.fmax(a, lo), hi)


def _valid_span(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``valid``: first valid index and one past the last (``(size, 0)`` if none)."""
    size = valid.shape[1]
    has = valid.any(axis=1)
    first = np.where(has, valid.argmax(axis=1), size)
    last = np.where(has, size - valid[:, ::-1].argmax(axis=1), 0)
    return first, last


def _accumulated_positions(a0: np.ndarray, offset: np.ndarray, size: int) -> np.ndarray:
    """Sample positions of Pillow's NEAREST scale path: start, then ``+= a0`` per pixel.

    ``np.cumsum`` (``add.accumulate``) adds strictly left to right, matching the C loop's drift.
    """
    pos = np.empty((a0.shape[0], size), dtype=np.float64)
    pos[:, 0] = offset + a0 * 0.5
    pos[:, 1:] = a0[:, None]
    np.cumsum(pos, axis=1, out=pos)
    return pos


def _split_positions(pos: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's ``pos -= 0.5; i = floor(pos); d = pos - i``, with ``i`` clamped to ``[-1, size-1]``.

    Valid positions lie in ``[0, size)`` and are unchanged by the pre-clamp; it only keeps
    out-of-range (masked) positions from overflowing the integer cast.
    """
    p = _clamp(pos, -1.0, float(size)) - 0.5
    base = np.floor(p)
    frac = p - base
    return _clamp(base.astype(np.intp), -1, size - 1), frac


def scale_about_centre(
    images: np.ndarray,
    scales: np.ndarray,
    canvas: tuple[int, int] | int | None = None,
    interpolation: Interpolation = "bicubic",
    centre: Centre = "exact",
) -> np.ndarray:
    """Scale each image about its centre by its own factor onto a fill-0 canvas.

    Bit-identical to ``PIL.Image.transform(canvas, AFFINE, affine_coefficients(s, ...), resample)``
    on mode "L" images for uint8 input, so datasets rendered here equal those rendered through
    torchvision's ``RandomAffine`` on PIL images, but far faster (whole batches in numpy).

    Args:
        images: ``(N, H, W)`` uint8 (Pillow mode "L" semantics: clipped, truncated) or float32 /
            float64 (mode "F" semantics: no clipping or quantisation). float32 reproduces Pillow's
            mode "F" bit for bit; float64 runs the same algorithm at float64 precision.
        scales: ``(N,)`` positive finite factors; ``< 1`` shrinks, ``> 1`` enlarges (the canvas
            crops). Each is converted to float64 before use, as Python would.
        canvas: output ``(height, width)``, or one int for a square canvas; default the input size.
        interpolation: "bicubic", "bilinear" or "nearest" (Pillow's filters of those names).
        centre: "exact" (the image centre, torchvision >= 0.9) or "legacy" (half a pixel right
            and down, torchvision < 0.9, how SESN's published MNIST-Scale was rendered).

    Returns:
        ``(N, canvas_h, canvas_w)`` array of the input dtype.

    Raises:
        InvalidParameterError: bad shape, dtype, scale, canvas, interpolation or centre.
    """
    images, s64, (ch, cw) = _validate(images, scales, canvas, interpolation, centre)
    n, h, w = images.shape
    if 0 < n < _SMALL_BATCH and images.dtype != np.float64:
        return np.stack(
            [
                pil_scale_about_centre(im, float(sc), (ch, cw), interpolation, centre)
                for im, sc in zip(images, s64, strict=True)
            ]
        )
    out = np.zeros((n, ch, cw), dtype=images.dtype)
    if n == 0:
        return out
    # Neighbouring scales have nearly the same footprint on the canvas, so chunks of sorted scales
    # can be cropped to the union of their footprints: much less work when shrinking.
    order = np.argsort(s64, kind="stable")
    step = _chunk_size(h, w, ch, cw)
    block = step * _CHUNKS_PER_BLOCK
    ws = _Workspace()
    for b0 in range(0, n, block):
        bidx = order[b0 : b0 + block]
        geo = _Geometry(s64[bidx], (h, w), (ch, cw), interpolation, step, centre)
        for k, c0 in enumerate(range(0, bidx.shape[0], step)):
            sl = slice(c0, c0 + step)
            x_lo, x_hi, y_lo, y_hi = geo.x_lo[k], geo.x_hi[k], geo.y_lo[k], geo.y_hi[k]
            if x_lo >= x_hi or y_lo >= y_hi:
                continue  # every sample is outside the input: all fill
            xs, ys = slice(x_lo, x_hi), slice(y_lo, y_hi)
            idx = bidx[sl]
            # Render into full canvases and scatter whole images: much cheaper than scattering
            # the crop through fancy indexing.
            full = ws.get("full", (idx.shape[0], ch, cw), out.dtype)
            if x_hi - x_lo < cw or y_hi - y_lo < ch:
                full.fill(0)
            dst = full[:, ys, xs]
            if interpolation == "nearest":
                _nearest(images, idx, geo.tx[sl, xs], geo.ty[sl, ys], dst, ws)
            else:
                rows = (geo.r_lo[k], geo.r_hi[k])
                x_pos = (geo.tx[:, sl, xs], geo.dx[sl, xs])
                y_pos = (geo.ty[:, sl, ys], geo.dy[sl, ys])
                _separable(images, idx, x_pos, y_pos, rows, interpolation, dst, ws)
            if geo.needs_mask[k]:
                mask = ws.get("mask", dst.shape, np.bool_)
                np.logical_or(geo.inv_y[sl, ys, None], geo.inv_x[sl, None, xs], out=mask)
                np.copyto(dst, 0, where=mask)
            out[idx] = full
    return out


def _nearest(
    images: np.ndarray,
    idx: np.ndarray,
    xi: np.ndarray,
    yi: np.ndarray,
    dst: np.ndarray,
    ws: _Workspace,
) -> None:
    """``dst[:] = images[idx, yi, xi]`` (indices already truncated and clamped)."""
    _, h, w = images.shape
    m = idx.shape[0]
    src = images[idx]  # (m, H, W) copy: contiguous whatever the caller's strides
    row_start = yi + np.arange(0, m * h, h)[:, None]
    row_start *= w
    flat = ws.get("nearest_idx", dst.shape, np.intp)
    np.add(row_start[:, :, None], xi[:, None, :], out=flat)
    np.copyto(dst, src.reshape(-1).take(flat, mode="clip"))


def _gather_taps(
    src: np.ndarray, taps: np.ndarray, row_offset: np.ndarray, ws: _Workspace, name: str
) -> list[np.ndarray]:
    """Rows ``src[i, taps[t, i, j] + row_offset[i]]`` for each tap ``t``: ``(m, q, K)`` arrays.

    ``src`` is ``(m, L, K)``. Whole rows are copied (``take`` on axis 0), far cheaper than
    gathering single elements, and each tap's array is contiguous so the arithmetic that follows
    runs in long inner loops. Indices outside ``src`` (only ever for masked pixels) are clipped.
    """
    m, length, k = src.shape
    ntaps, _, q = taps.shape
    idx = ws.get(name + "_idx", taps.shape, np.intp)
    np.add(taps, row_offset, out=idx)
    rows = ws.get(name, (ntaps * m * q, k), src.dtype)
    src.reshape(m * length, k).take(idx.reshape(-1), axis=0, out=rows, mode="clip")
    rows = rows.reshape(ntaps, m, q, k)
    return [rows[t] for t in range(ntaps)]


def _filter(v: list[np.ndarray], d: np.ndarray, ws: _Workspace, name: str) -> np.ndarray:
    """Pillow's BICUBIC / BILINEAR macro on tap values ``v`` at fractions ``d``, in float64.

    The coefficients are formed in the dtype of ``v`` (as C does in the pixel type: exact for
    integers, float32 for mode "F"), then the polynomial is evaluated in float64, Horner order:
    ``p1 + d*(p2 + d*(p3 + d*p4))`` with ``p1 = v2``, ``p2 = -v1 + v3``,
    ``p3 = 2*(v1 - v2) + v3 - v4``, ``p4 = -v1 + v2 - v3 + v4`` (Keys cubic, a = -1), or
    ``a + (b - a)*d``. The rewrites used are bit-exact in IEEE arithmetic: ``-a + b == b - a``,
    ``2*(a - b) == (b - a)*-2`` and commuted products. The tap arrays are scratch and get
    overwritten. ``d`` must already have the full shape: broadcasting it along the last axis
    would make numpy's inner loops as short as one row (measured ~1.6x slower).
    """
    shape, work = v[0].shape, v[0].dtype
    e = ws.get(name + "_e", shape, work)
    acc = e if work == np.float64 else ws.get(name + "_acc", shape, np.float64)
    if len(v) == 2:
        v1, v2 = v
        np.subtract(v2, v1, out=e)
        np.multiply(e, d, out=acc)
        acc += v1
        return acc
    v1, v2, v3, v4 = v
    p3 = ws.get(name + "_p3", shape, work)
    np.subtract(v2, v1, out=e)  # -v1 + v2
    np.subtract(v3, v1, out=v1)  # v1 now holds p2
    np.multiply(e, -2, out=p3)
    p3 += v3
    p3 -= v4
    e -= v3
    e += v4  # e now holds p4
    np.multiply(e, d, out=acc)
    acc += p3
    acc *= d
    acc += v1
    acc *= d
    acc += v2
    return acc


def _separable(
    images: np.ndarray,
    idx: np.ndarray,
    x_pos: tuple[np.ndarray, np.ndarray],
    y_pos: tuple[np.ndarray, np.ndarray],
    rows: tuple[int, int],
    interpolation: str,
    dst: np.ndarray,
    ws: _Workspace,
) -> None:
    """Bicubic/bilinear for ``images[idx]`` into ``dst``: row pass, then column pass, as Pillow.

    ``x_pos``/``y_pos`` are (clamped tap indices ``(taps, m, q)``, fraction ``(m, q)``) per
    sample; ``rows`` is the band of input rows the column pass needs.
    """
    tx, dx = x_pos
    ty, dy = y_pos
    r_lo, r_hi = rows
    m, nx, ny, nr = idx.shape[0], tx.shape[2], ty.shape[2], r_hi - r_lo
    w = images.shape[2]
    # Row pass on the transposed band, so taps (columns) are rows: (m, W, nr) -> (m, nx, nr).
    # uint8 taps are handled in float64, where their integer arithmetic is exact.
    work = np.float64 if images.dtype == np.uint8 else images.dtype
    band = ws.get("band", (m, w, nr), work)
    np.copyto(band, images[idx, r_lo:r_hi, :].transpose(0, 2, 1))
    d = ws.get("dx", (m, nx, nr), np.float64)
    np.copyto(d, dx[:, :, None])
    first_row = np.arange(0, m * w, w)[:, None]
    row_pass = _filter(_gather_taps(band, tx, first_row, ws, "xtaps"), d, ws, "x")
    # Column pass on the float64 row results: (m, nr, nx) -> (m, ny, nx).
    col_src = ws.get("col_src", (m, nr, nx), np.float64)
    np.copyto(col_src, row_pass.transpose(0, 2, 1))
    d = ws.get("dy", (m, ny, nx), np.float64)
    np.copyto(d, dy[:, :, None])
    first_row = np.arange(-r_lo, m * nr - r_lo, nr)[:, None]
    val = _filter(_gather_taps(col_src, ty, first_row, ws, "ytaps"), d, ws, "y")
    if images.dtype == np.uint8 and interpolation == "bicubic":
        np.maximum(val, 0.0, out=val)  # <= 0 -> 0, >= 255 -> 255, else truncate
        np.minimum(val, 255.0, out=val)
    np.copyto(dst, val, casting="unsafe")  # C's (UINT8) cast truncates; float32 rounds
