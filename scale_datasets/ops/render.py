"""Render ops: the pure batch functions that turn base samples and a plan column into samples.

A file records the op it was built with by name (its `render` attribute: op, plan column and op
parameters), and both the builder and the Dataset look the op up here, so a file always renders
the same way it was planned. Two kinds:

* value-wise ops (`by_value=False`): one batch call with one plan value per sample; the output
  shape is fixed (MNIST-Scale: each digit scaled by its own factor on the same canvas);
* per-value ops (`by_value=True`): the output shape depends on the value, so samples that share
  a value render together (multi-resolution: every sample at resolution r is r x r).

torch is imported only by the ops that need it, so pixel builds start their workers without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import IntegrityError
from .pixels import to_unit_float


@dataclass(frozen=True)
class RenderOp:
    name: str
    column: str  # the plan column the op reads: "scales" or "resolutions"
    by_value: bool
    fn: Callable[..., Any]
    # Value-wise ops: the same render on torch tensors on any device (the Dataset uses it when
    # its samples live on a GPU); equal to `fn` within 1 grey level.
    torch_fn: Callable[..., Any] | None = None


def _pil_affine_scale(base: np.ndarray, scales: np.ndarray, **params: Any) -> np.ndarray:
    """uint8 (B, H, W) digits, each scaled by its factor about the centre (Pillow-exact)."""
    from .scaling import scale_about_centre

    return scale_about_centre(base, scales, **params)


def _pil_affine_canvas(base: np.ndarray, scales: np.ndarray, **params: Any) -> np.ndarray:
    """uint8 (B, h, w) digits, each zero-padded and centred on the canvas and scaled by its
    factor about the canvas centre (PIL's affine transform on the padded canvas)."""
    from .canvas import scale_on_canvas

    return scale_on_canvas(base, scales, **params)


def _pil_affine_canvas_torch(base: Any, scales: Any, **params: Any) -> Any:
    from .torch_scaling import scale_on_canvas_torch

    return scale_on_canvas_torch(base, scales, **params)


def _fourier_resample(samples: Any, resolution: int) -> Any:
    """Ideal down-scaling D_r of float samples (B, C, H, W) -> (B, C, r, r), same type out.

    torch in, torch out: the Dataset, one batched FFT on the samples' device. numpy in, numpy
    out: the builder's materialised samples, which must not depend on how rows fall into
    blocks, shards or workers (a batched FFT's last bits can depend on the batch): one sample
    at a time, in float64 on one thread, rounded to float32. The two agree to ~1e-6.
    """
    import torch

    from .fourier import resample, resample_batch

    if not isinstance(samples, np.ndarray):
        return resample_batch(samples, int(resolution))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = [
            resample(torch.from_numpy(sample.astype(np.float64)), int(resolution)).numpy()
            for sample in samples
        ]
    finally:
        torch.set_num_threads(threads)
    shape = (0, samples.shape[1], int(resolution), int(resolution))
    return np.stack(out).astype(np.float32) if out else np.zeros(shape, np.float32)


RENDER_OPS: dict[str, RenderOp] = {
    op.name: op
    for op in (
        RenderOp("pil_affine_scale", "scales", by_value=False, fn=_pil_affine_scale),
        RenderOp(
            "pil_affine_canvas",
            "scales",
            by_value=False,
            fn=_pil_affine_canvas,
            torch_fn=_pil_affine_canvas_torch,
        ),
        RenderOp("fourier_resample", "resolutions", by_value=True, fn=_fourier_resample),
    )
}


def get_render_op(name: str) -> RenderOp:
    try:
        return RENDER_OPS[name]
    except KeyError:
        raise IntegrityError(
            f"render op {name!r} is unknown to this version (known: {', '.join(RENDER_OPS)})"
        ) from None


def as_channels(base: np.ndarray) -> np.ndarray:
    """Base samples with a channel axis: (B, H, W) grey becomes (B, 1, H, W)."""
    return base[:, None] if base.ndim == 3 else base


def render_uint8_block(
    pool: np.ndarray, op_name: str, params: dict[str, Any], source_index: np.ndarray, value: Any
) -> np.ndarray:
    """One block of samples from uint8 base samples, as a build task runs it in a worker.

    Value-wise ops get the uint8 digits and one value per sample; per-value ops get float32
    samples in [0, 1] with a channel axis and the block's one value.
    """
    op = get_render_op(op_name)
    base = pool[source_index]
    if op.by_value:
        return op.fn(to_unit_float(as_channels(base)), value, **params)
    return op.fn(base, value, **params)
