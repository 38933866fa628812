"""MNIST Large Scale render (reconstructed): spline rescale, Gaussian blur, arctan squash.

The original files are only available on request (PROTOCOLS.md section 5); this is the
reconstruction of that section, so the preset built on it is "reconstructed", never equal to
the published files. Per ``h`` x ``w`` uint8 digit ``D`` (28 x 28 normally) and scale ``s > 0``,
on a ``canvas`` x ``canvas`` output:

1. anti-aliasing for ``s < 1`` only: ``scipy.ndimage.gaussian_filter`` of ``D`` (0..255 as
   float64, ``mode="constant"``: zero outside, output cropped to the digit) with
   ``sigma_aa = 0.5 * sqrt(1 / s**2 - 1)`` source pixels, the blur that takes the half-pixel blur
   of the source grid to the half-pixel blur of the target grid;
2. cubic B-spline interpolation of that image treated as zero outside (scipy's ``order=3``,
   ``mode="grid-constant"``) at the canvas pixel centres, scaling about the centres: output
   row ``y`` reads the source at ``u = (y + 0.5 - canvas / 2) / s + h / 2 - 0.5`` (columns
   likewise), so the digit is exactly centred, ``h * s`` pixels tall, cropped by the canvas;
3. ``gaussian_filter(mode="constant", cval=0, truncate=4.0)`` with ``sigma = 7/8 * s`` pixels on
   that 0..255 canvas image;
4. ``I' = (2 / pi) * arctan(0.02 * (I - 128))``, float32 out (``BACKGROUND`` where ``I = 0``).

Steps 1-3 are linear and separable, so the whole map is ``A_h D A_w^T`` with one matrix per axis,
``A = G Z P`` (``canvas`` x ``h``): ``P`` the anti-alias Gaussian, ``Z`` the spline sampling
(prefilter included), ``G`` the canvas Gaussian, each written out in closed form (no scipy call).
``Z`` is scipy's "grid-constant" spline exactly as scipy computes it: the signal is padded with
12 zeros on each side, its B-spline coefficients are those of the padded signal with a mirror
boundary (the inverse of its collocation matrix), and taps beyond the padded signal read 0, so
``Z[y, k] = sum_j beta3(u_y - n_j) C[n_j, k]`` over the four taps ``n_j`` around ``u_y``. (A
signal zero-extended for ever would have coefficients ``sqrt(3) z^|k|``, ``z = sqrt(3) - 2``,
without end; the padding cuts them at ``|z|^12``, about 1e-7 of the edge pixel, 12 pixels out.)
``G`` and ``P`` use scipy's kernel (radius ``int(4 sigma + 0.5)``, normalised over that radius),
truncated at the border (zero outside). Rows of ``A`` that are exactly zero (the canvas beyond
the blurred, padded digit) are skipped: the output there is exactly ``BACKGROUND``. That crop is
what makes small scales cheap; large ones cover the canvas.

Rendering is a pair of GEMMs per sample, ``(A_h D) A_w^T``, issued as one stacked ``matmul``
over all samples that share a scale (the test sets use 17 fixed scales, a train set one). Each
sample is computed by the same BLAS calls with the same shapes whatever else is in the batch
(one stacked product loops over per-sample GEMMs; a single GEMM over the whole group would
pick BLAS kernels by the group's size and change the last bits), and every later step is
elementwise, so a sample renders to the same float32 bits alone or in any batch. Matrices are
built in float64 once per distinct scale and cached (bounded). A scale is used at its exact
value: a float32 scale read from a file, ``float32(2 ** 0.25)``, is not ``2 ** 0.25`` and
renders (negligibly) differently.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidParameterError
from .scaling import check_digits, check_scales

__all__ = ["BACKGROUND", "TEST_SCALES", "large_scale_matrix", "render_large_scale"]

# The 17 test scales of the published test-only files: 2 ** (k / 4), k = -4..12 (0.5 to 8).
TEST_SCALES: tuple[float, ...] = tuple(2.0 ** (k / 4) for k in range(-4, 13))

_SQUASH_OFFSET = 128.0
_SQUASH_GAIN = 0.02
_SQUASH_RANGE = 2.0 / math.pi
_BLUR_PER_SCALE = 7.0 / 8.0
_TRUNCATE = 4.0  # scipy's default: kernel radius int(4 sigma + 0.5)

# scipy's spline with mode="grid-constant" pads the signal with this many zeros, computes the
# coefficients with a mirror boundary, and reads 0 beyond (ndimage's _prepad_for_spline_filter).
_PAD = 12
# Above this sigma the Gaussian's normalisation is taken in closed form (Euler-Maclaurin on the
# tail; relative error below 1e-12) instead of summing 8 sigma + 1 weights.
_CLOSED_FORM_SIGMA = 128.0
# At or above this sigma, 4 * sigma + 0.5 is an integer in float64 (and may overflow).
_HUGE_SIGMA = 2.0**53
# float64 elements of one chunk of rendered crops (2 MiB): small enough to stay in cache.
_CHUNK_ELEMENTS = 1 << 18
_CACHE_SIZE = 256


def _squash(image: np.ndarray) -> np.ndarray:
    """Step 4 in place on a float64 array: ``(2 / pi) * arctan(0.02 * (I - 128))``."""
    np.subtract(image, _SQUASH_OFFSET, out=image)
    np.multiply(image, _SQUASH_GAIN, out=image)
    np.arctan(image, out=image)
    np.multiply(image, _SQUASH_RANGE, out=image)
    return image


# What an input of 0 gives (about -0.7629), computed by the same operations as every pixel.
BACKGROUND: float = float(_squash(np.zeros(1))[0])
_BACKGROUND32 = np.float32(BACKGROUND)


def _gaussian_weights(sigma: float, n: int) -> np.ndarray:
    """scipy's ``gaussian_filter1d`` kernel (truncate 4) at offsets ``0..min(radius, n - 1)``.

    The kernel is ``exp(-x^2 / (2 sigma^2))`` for ``|x| <= radius = int(4 sigma + 0.5)``,
    normalised by its sum over that radius; only the offsets a length-``n`` axis can use are
    returned.
    """
    if sigma >= _HUGE_SIGMA:
        reach, rho = n - 1, _TRUNCATE
    else:
        radius = int(_TRUNCATE * sigma + 0.5)
        if radius == 0:
            return np.ones(1)  # scipy's kernel is [1.0]: no smoothing
        reach, rho = min(radius, n - 1), (radius + 1) / sigma
    if sigma < _CLOSED_FORM_SIGMA:
        phi = np.exp(-0.5 / (sigma * sigma) * np.arange(-radius, radius + 1) ** 2)
        return phi[radius : radius + reach + 1] / phi.sum()
    # sum_{|x| <= r} f = sigma sqrt(2 pi) erf(a / (sigma sqrt 2)) - f(a) - a f(a) / (6 sigma^2)
    # with a = r + 1 = rho sigma (the full sum minus twice the tail, Euler-Maclaurin); divided
    # by sigma so that no term overflows.
    tail = math.exp(-0.5 * rho * rho) / sigma
    norm = math.sqrt(2.0 * math.pi) * math.erf(rho / math.sqrt(2.0)) - tail * (
        1.0 + rho / (6.0 * sigma)
    )
    x = np.arange(reach + 1, dtype=np.float64) / sigma
    return np.exp(-0.5 * x * x) / sigma / norm


def _gaussian_matrix(sigma: float, n: int) -> np.ndarray:
    """``(n, n)``: the Gaussian smoothing of a length-``n`` axis, zero outside (scipy's
    ``mode="constant"``, truncate 4)."""
    weights = _gaussian_weights(sigma, n)
    reach = len(weights) - 1
    band = np.zeros(2 * n - 1)  # band[n - 1 + d]: the weight of offset d
    band[n - 1 - reach : n + reach] = np.concatenate([weights[:0:-1], weights])
    return np.lib.stride_tricks.sliding_window_view(band, n)[::-1]


@functools.lru_cache(maxsize=16)
def _coefficient_table(size: int) -> np.ndarray:
    """``table[t + _PAD + 4, k]``: the B-spline coefficient at tap ``t`` per unit input at
    ``k``, for taps ``-(_PAD + 4) .. size + _PAD + 4`` (0 beyond the padded signal)."""
    length = size + 2 * _PAD
    # The collocation matrix of the padded signal with scipy's mirror boundary (c[-1] = c[1]).
    collocation = np.zeros((length, length))
    i = np.arange(length)
    collocation[i, i] = 4 / 6
    collocation[i[:-1], i[:-1] + 1] = 1 / 6
    collocation[i[1:], i[1:] - 1] = 1 / 6
    collocation[0, 1] = collocation[-1, -2] = 2 / 6
    table = np.zeros((length + 9, size))
    table[4 : 4 + length] = np.linalg.inv(collocation)[:, _PAD : _PAD + size]
    table.setflags(write=False)
    return table


def _spline_matrix(scale: float, size: int, canvas: int) -> np.ndarray:
    """``Z`` (``canvas`` x ``size``): scipy's cubic B-spline interpolation (``order=3``,
    ``mode="grid-constant"``, prefilter included) of a length-``size`` signal, sampled at the
    canvas pixel centres."""
    u = (np.arange(canvas) + 0.5 - canvas / 2) / scale + (size / 2 - 0.5)
    # Beyond this every tap is outside the padded signal and reads 0; clipping keeps the
    # integer taps in the table (and makes the +-inf positions of tiny scales harmless).
    u = np.clip(u, -(_PAD + 3.0), size - 1 + _PAD + 3.0)
    base = np.floor(u)
    f = (u - base)[:, None]
    g = 1.0 - f
    rows = base.astype(np.intp) + (_PAD + 4)
    table = _coefficient_table(size)
    # beta3 at the distances of the four taps floor(u) - 1 .. floor(u) + 2.
    z = g * g * g / 6 * table[rows - 1]
    z += (2 / 3 - f * f + f * f * f / 2) * table[rows]
    z += (2 / 3 - g * g + g * g * g / 2) * table[rows + 1]
    z += f * f * f / 6 * table[rows + 2]
    return z


@dataclass(frozen=True)
class _Axis:
    """One axis of one scale: ``matrix`` A (read-only) and the half-open range ``lo:hi``
    holding its non-zero rows (``crop`` is that slice)."""

    matrix: np.ndarray
    lo: int
    hi: int

    @property
    def crop(self) -> np.ndarray:
        return self.matrix[self.lo : self.hi]


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _axis(scale: float, size: int, canvas: int) -> _Axis:
    """``A = G Z P`` for one scale (cached by the exact float value)."""
    z = _spline_matrix(scale, size, canvas)
    if scale < 1.0:
        # The recipe's own operations: scipy's radius int(4 sigma + 0.5) jumps where 4 sigma + 0.5
        # is an integer (s = 0.8: sigma 0.375, radius 2), so the last bit of sigma matters.
        # Below 1e-150, s ** 2 underflows; 0.5 / s is then the same number.
        sigma_aa = 0.5 * math.sqrt(1 / scale**2 - 1) if scale > 1e-150 else 0.5 / scale
        z = z @ _gaussian_matrix(sigma_aa, size)
    a = _gaussian_matrix(_BLUR_PER_SCALE * scale, canvas) @ z
    keep = np.flatnonzero(a.any(axis=1))
    lo, hi = (int(keep[0]), int(keep[-1]) + 1) if keep.size else (0, 0)
    a.setflags(write=False)
    return _Axis(matrix=a, lo=lo, hi=hi)


def _check_canvas(canvas: int) -> int:
    if not isinstance(canvas, (int, np.integer)) or isinstance(canvas, bool) or canvas < 1:
        raise InvalidParameterError(f"canvas must be an int >= 1, got {canvas!r}")
    return int(canvas)


def large_scale_matrix(scale: float, size: int = 28, canvas: int = 112) -> np.ndarray:
    """The linear part of the render along one axis: ``(canvas, size)`` float64, read-only.

    ``render_large_scale`` of a ``size`` x ``size`` digit ``D`` at ``scale`` is
    ``squash(A @ D @ A.T)`` with this ``A`` (anti-alias, spline sampling and canvas blur), up to
    float64 rounding.

    Raises:
        InvalidParameterError: ``scale`` not finite and > 0, ``size`` or ``canvas`` not an
            int >= 1.
    """
    real = isinstance(scale, (int, float, np.integer, np.floating)) and not isinstance(scale, bool)
    try:
        value = float(scale) if real else math.nan
    except OverflowError:  # an int past float64
        value = math.inf
    if not (math.isfinite(value) and value > 0 and math.isfinite(1.0 / value)):
        raise InvalidParameterError(f"scale must be a finite number > 0, got {scale!r}")
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise InvalidParameterError(f"size must be an int >= 1, got {size!r}")
    return _axis(value, int(size), _check_canvas(canvas)).matrix


def render_large_scale(digits: np.ndarray, scales: np.ndarray, canvas: int = 112) -> np.ndarray:
    """Render each digit at its own scale on a ``canvas`` x ``canvas`` float32 image.

    Args:
        digits: ``(B, h, w)`` uint8 (28 x 28 for MNIST; any size works, the digit is scaled
            about its own centre onto the canvas centre).
        scales: ``(B,)`` finite factors > 0 (the digit becomes ``h * s`` pixels tall).
        canvas: output side, an int >= 1.

    Returns:
        ``(B, canvas, canvas)`` float32, ``BACKGROUND`` where no ink reaches, in about
        ``[-0.763, 0.761]`` (the spline rings a little past that at hard edges, as the recipe
        does: Fashion-MNIST items reach about -0.772). A sample's pixels do not depend on the
        rest of the batch.

    Raises:
        InvalidParameterError: bad digits, scales or canvas (the message names the argument).
    """
    digits = check_digits(digits)
    n, h, w = digits.shape
    s64 = check_scales(scales, n)
    canvas = _check_canvas(canvas)
    out = np.full((n, canvas, canvas), _BACKGROUND32, dtype=np.float32)
    unique, inverse = np.unique(s64, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(unique) + 1))
    for i, scale in enumerate(unique.tolist()):
        rows = _axis(scale, h, canvas)
        cols = rows if w == h else _axis(scale, w, canvas)
        area = (rows.hi - rows.lo) * (cols.hi - cols.lo)
        if area == 0:
            continue  # the digit does not reach the canvas: all background
        members = order[bounds[i] : bounds[i + 1]]
        step = max(1, _CHUNK_ELEMENTS // area)
        for start in range(0, len(members), step):
            idx = members[start : start + step]
            x = digits[idx].astype(np.float64)
            # Stacked products: one GEMM per sample, the same calls whatever the batch holds.
            x = np.matmul(np.matmul(rows.crop, x), cols.crop.T)
            out[idx, rows.lo : rows.hi, cols.lo : cols.hi] = _squash(x)
    return out
