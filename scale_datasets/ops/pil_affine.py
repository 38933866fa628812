"""Pillow's affine transform for pure scaling about the centre: its coefficients and Pillow itself.

`affine_coefficients` is the definition of "scale by s about the centre" that every preset uses
(the matrix torchvision's `F.affine` hands to Pillow); `pil_scale_about_centre` runs one image
through Pillow, the reference that `scaling.scale_about_centre` reproduces bit for bit.

Two centres exist because torchvision moved its PIL centre in 0.9 (Pillow's coordinates put
pixel i on [i, i + 1)):

* "exact": (w/2, h/2), the middle of the image (torchvision >= 0.9).
* "legacy": (w/2 + 0.5, h/2 + 0.5), half a pixel right and down (torchvision < 0.9, which
  rendered SESN's published MNIST-Scale). On a canvas of another size the point w/2 + 0.5 of
  the input lands on the point cw/2 + 0.5 of the canvas, so legacy is exact shifted by half a
  pixel in both frames.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..errors import InvalidParameterError

Interpolation = Literal["bicubic", "bilinear", "nearest"]

INTERPOLATIONS: tuple[str, ...] = ("bicubic", "bilinear", "nearest")

Centre = Literal["exact", "legacy"]

CENTRES: tuple[str, ...] = ("exact", "legacy")


def check_centre(centre: str) -> None:
    """Raise ``InvalidParameterError`` unless ``centre`` is one of ``CENTRES``."""
    if centre not in CENTRES:
        raise InvalidParameterError(f"centre must be one of {', '.join(CENTRES)}, got {centre!r}")


def check_interpolation(interpolation: str) -> None:
    """Raise ``InvalidParameterError`` unless ``interpolation`` is one of ``INTERPOLATIONS``."""
    if interpolation not in INTERPOLATIONS:
        raise InvalidParameterError(
            f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}"
        )


def fixed_points(
    in_hw: tuple[int, int], canvas_hw: tuple[int, int], centre: Centre = "exact"
) -> tuple[float, float, float, float]:
    """``(canvas x, canvas y, input x, input y)``: the point the scaling keeps in place.

    These are the ``cx, cy`` torchvision puts into the matrix; the exact centre is written
    ``w / 2`` and the legacy one ``w * 0.5 + 0.5`` as torchvision wrote them (same values).
    """
    check_centre(centre)
    h, w = in_hw
    canvas_h, canvas_w = canvas_hw
    if centre == "legacy":
        return canvas_w * 0.5 + 0.5, canvas_h * 0.5 + 0.5, w * 0.5 + 0.5, h * 0.5 + 0.5
    return canvas_w / 2, canvas_h / 2, w / 2, h / 2


def affine_coefficients(
    scale: float,
    in_hw: tuple[int, int],
    canvas_hw: tuple[int, int],
    centre: Centre = "exact",
) -> tuple[float, ...]:
    """The Pillow AFFINE ``data`` 6-tuple that shrinks/enlarges by ``scale`` about the centre.

    Pillow wants the inverse map (output pixel -> input position): the canvas point of
    ``fixed_points`` maps to the input point. For ``canvas_hw == in_hw`` this is bit-for-bit the
    matrix torchvision's ``F.affine(img, angle=0, translate=[0, 0], scale=scale, shear=[0, 0])``
    passes to Pillow, with ``centre="exact"`` for torchvision >= 0.9 and ``centre="legacy"`` for
    torchvision < 0.9 (whose PIL centre was ``(w * 0.5 + 0.5, h * 0.5 + 0.5)``; for a pure
    scaling its older matrix formula gives the same bits), which is what makes our renders
    identical to torchvision's ``RandomAffine``.
    """
    out_x, out_y, in_x, in_y = fixed_points(in_hw, canvas_hw, centre)
    a0 = 1.0 / float(scale)
    a2 = a0 * (-out_x) + in_x
    a5 = a0 * (-out_y) + in_y
    return (a0, 0.0, a2, 0.0, a0, a5)


def resolve_canvas(canvas: tuple[int, int] | int | None, h: int, w: int) -> tuple[int, int]:
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


def pil_scale_about_centre(
    image: np.ndarray,
    scale: float,
    canvas: tuple[int, int] | int | None = None,
    interpolation: Interpolation = "bicubic",
    centre: Centre = "exact",
) -> np.ndarray:
    """Reference implementation: one image through Pillow itself (for tests and benchmarks).

    uint8 images go through mode "L" and return uint8; float images through mode "F" and return
    float32 (Pillow has no float64 mode). Fill is 0, as in ``scale_about_centre``. ``centre``
    is "exact" or "legacy" (see the module docstring).
    """
    from PIL import Image

    arr = np.asarray(image)
    if arr.ndim != 2:
        raise InvalidParameterError(f"image must have shape (H, W), got {arr.shape}")
    check_interpolation(interpolation)
    h, w = arr.shape
    ch, cw = resolve_canvas(canvas, h, w)
    resample = {
        "bicubic": Image.Resampling.BICUBIC,
        "bilinear": Image.Resampling.BILINEAR,
        "nearest": Image.Resampling.NEAREST,
    }[interpolation]
    if arr.dtype == np.uint8:
        pil = Image.fromarray(np.ascontiguousarray(arr))
    else:
        pil = Image.fromarray(np.ascontiguousarray(arr, dtype=np.float32))
    data = affine_coefficients(float(scale), (h, w), (ch, cw), centre)
    return np.asarray(pil.transform((cw, ch), Image.Transform.AFFINE, data, resample))
