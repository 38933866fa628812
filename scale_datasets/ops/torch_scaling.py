"""Batched, device-agnostic torch version of ``canvas.scale_on_canvas`` (within 1 grey level).

Scaling about the centre is separable, so each sample's render is ``Wy @ digit @ Wx^T`` with
per-sample interpolation matrices ``Wy`` (canvas_h x source rows) and ``Wx`` (canvas_w x source
columns), the source being the digit with the same zero margin as ``scale_on_canvas`` uses. Both
matrices are built from Pillow's own sample positions, in float64 and in canvas coordinates with
the reference coefficients (so the taps and fractions ``d`` are the bits Pillow uses):
``x_in = a0 * (x + 0.5) + a2``, minus 0.5, floor, and the weights of Pillow's cubic
``p1 + d*(p2 + d*(p3 + d*p4))`` (Keys, a = -1) multiplied out:

    w(-1) = ((2 - d) * d - 1) * d        w(0) = ((d - 2) * d) * d + 1
    w(+1) = ((1 - d) * d + 1) * d        w(+2) = ((d - 1) * d) * d

(bilinear: ``1 - d``, ``d``; nearest: one weight 1 at Pillow's truncated position), taps
clamped to the source as Pillow clamps them to the canvas, and rows of sample points off the
canvas left at 0 (Pillow's fill). Two ``torch.bmm`` then render a whole batch at once, no
Python loop over samples; the result is clipped to [0, 255] and truncated as Pillow's mode "L".

Only the order of the floating-point sums differs from Pillow's Horner evaluation, so a pixel
can land on the other side of an integer and differ by 1 grey level. In float64 (the default)
that is rare: on flat runs of equal pixels Pillow's polynomial gives the exact integer while the
weights sum to 1 only up to rounding, so ``v - 1e-14`` truncates to ``v - 1``; float32 adds the
ties of its own rounding (measured rates are in ``tests/test_canvas.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import InvalidParameterError
from .canvas import _margins, canvas_offsets, check_canvas
from .pil_affine import Interpolation, check_interpolation
from .scaling import _accumulated_positions, check_scales

__all__ = ["scale_on_canvas_torch"]

# Samples per matrix product. On the CPU small pieces keep the float canvases in cache: 32 ran
# 3.4x faster than one 1024 batch (float64, 2 cores); 16 was as fast, 128 ~20% slower. Elsewhere
# only memory bounds it (4096 x 168 x 168 float64 is 0.9 GB).
_CPU_CHUNK = 32
_DEVICE_CHUNK = 4096


def _positions(
    s: torch.Tensor, canvas: int, interpolation: str, device: torch.device
) -> torch.Tensor:
    """Pillow's sample positions ``(B, canvas)`` in canvas coordinates, float64 on ``device``.

    The same IEEE operations as ``canvas._axis`` (separate multiply and add, nothing fused), so
    the same bits. NEAREST accumulates ``+= a0`` left to right, which a parallel scan would not
    reproduce: those are computed on the CPU by numpy.
    """
    if interpolation == "nearest":
        a0 = 1.0 / s.detach().cpu().numpy()
        a2 = a0 * (-(canvas / 2)) + canvas / 2
        return torch.from_numpy(_accumulated_positions(a0, a2, canvas)).to(device)
    a0 = 1.0 / s
    a2 = a0 * (-(canvas / 2)) + canvas / 2
    x = torch.arange(canvas, dtype=torch.float64, device=device) + 0.5
    return a0[:, None] * x + a2[:, None]


def _weights(
    s: torch.Tensor, size: int, canvas: int, interpolation: str, dtype: torch.dtype
) -> torch.Tensor:
    """``(B, canvas, size + margins)``: the interpolation matrix of one axis per sample."""
    device = s.device
    before, _ = canvas_offsets(size, canvas)
    m0, m1 = _margins(size, canvas)
    shift, length = before - m0, size + m0 + m1
    pos = _positions(s, canvas, interpolation, device)
    valid = (pos >= 0.0) & (pos < canvas)
    if interpolation == "nearest":
        base = pos.clamp(0.0, canvas - 1.0).to(torch.long)  # trunc == floor where valid
        taps = [(0, torch.ones_like(pos))]
    else:
        p = pos.clamp(-1.0, float(canvas)) - 0.5  # the clamp only tames invalid positions
        floor = torch.floor(p)
        d = p - floor
        base = floor.to(torch.long)
        if interpolation == "bilinear":
            taps = [(0, 1.0 - d), (1, d)]
        else:
            taps = [
                (-1, ((2.0 - d) * d - 1.0) * d),
                (0, ((d - 2.0) * d) * d + 1.0),
                (1, ((1.0 - d) * d + 1.0) * d),
                (2, ((d - 1.0) * d) * d),
            ]
    matrix = torch.zeros((s.shape[0], canvas, length), dtype=torch.float64, device=device)
    zero = torch.zeros((), dtype=torch.float64, device=device)
    for offset, weight in taps:
        index = (base + (offset - shift)).clamp(0, length - 1)
        matrix.scatter_add_(2, index[..., None], torch.where(valid, weight, zero)[..., None])
    return matrix.to(dtype)


def scale_on_canvas_torch(
    digits: torch.Tensor,
    scales: torch.Tensor,
    canvas: int | tuple[int, int] = 168,
    interpolation: Interpolation = "bicubic",
    compute_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Render a batch of digits at their scales on ``digits``' device (see the module docstring).

    Equal to ``canvas.scale_on_canvas`` (hence to Pillow on the padded canvas) within 1 grey
    level on every pixel, and exactly 0 outside ``canvas.digit_box``.

    Args:
        digits: ``(B, h, w)`` uint8, or floating with integer values in [0, 255].
        scales: ``(B,)`` positive finite factors (any real dtype; moved to ``digits``' device
            and used in float64, or on the CPU in float64 where the device lacks it).
        canvas: the padded canvas and output size, an int or ``(height, width)``, at least the
            digit size; the digit sits at ``(canvas - h) // 2`` as in ``scale_on_canvas``.
        interpolation: "bicubic" (the protocol), "bilinear" or "nearest".
        compute_dtype: dtype of the matrix products: float64 by default (float32 on MPS, which
            has no float64); float32 is faster on consumer GPUs and differs from Pillow on a
            few more pixels (still by at most 1).

    Returns:
        ``(B, canvas_h, canvas_w)`` uint8 tensor on ``digits``' device.

    Raises:
        InvalidParameterError: bad digits, scales, canvas, interpolation or compute_dtype.
    """
    check_interpolation(interpolation)
    if not isinstance(digits, torch.Tensor) or digits.ndim != 3:
        raise InvalidParameterError(
            f"digits must be a (B, h, w) torch tensor, got {_describe(digits)}"
        )
    if digits.dtype != torch.uint8 and not digits.is_floating_point():
        raise InvalidParameterError(f"digits must be uint8 or floating, got dtype {digits.dtype}")
    b, h, w = digits.shape
    if h < 1 or w < 1:
        raise InvalidParameterError(f"digits must have h, w >= 1, got shape {tuple(digits.shape)}")
    ch, cw = check_canvas(canvas, h, w)
    device = digits.device
    if compute_dtype is None:
        compute_dtype = torch.float32 if device.type == "mps" else torch.float64
    if compute_dtype not in (torch.float32, torch.float64):
        raise InvalidParameterError(
            f"compute_dtype must be torch.float32 or torch.float64, got {compute_dtype}"
        )
    geometry_device = device if device.type != "mps" else torch.device("cpu")  # no float64
    s = _checked_scales(scales, b, geometry_device)
    out = torch.zeros((b, ch, cw), dtype=torch.uint8, device=device)
    if b == 0:
        return out
    (mt, mb), (ml, mr) = _margins(h, ch), _margins(w, cw)
    step = _CPU_CHUNK if device.type == "cpu" else _DEVICE_CHUNK
    for start in range(0, b, step):
        part = slice(start, start + step)
        wy = _weights(s[part], h, ch, interpolation, compute_dtype).to(device)
        wx = _weights(s[part], w, cw, interpolation, compute_dtype).to(device)
        source = torch.nn.functional.pad(digits[part].to(compute_dtype), (ml, mr, mt, mb))
        # Row pass (along x) first, as Pillow: (b, rows, cols) @ (b, cols, cw) -> (b, rows, cw).
        rendered = torch.bmm(wy, torch.bmm(source, wx.transpose(1, 2)))
        # Mode "L": clip to [0, 255], then C's truncating cast (copy_ into uint8 truncates).
        out[part] = rendered.clamp_(0.0, 255.0)
    return out


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def _checked_scales(scales: Any, b: int, device: torch.device) -> torch.Tensor:
    """``scales`` checked on the host (`scaling.check_scales`: B floats, a negligible copy) as a
    float64 ``(b,)`` tensor on ``device``."""
    if isinstance(scales, torch.Tensor):
        scales = scales.detach().cpu().numpy()
    elif not isinstance(scales, np.ndarray):
        raise InvalidParameterError(f"scales must be a (B,) tensor, got {_describe(scales)}")
    return torch.from_numpy(check_scales(scales, b)).to(device)
