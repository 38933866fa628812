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
    dims: int = 2  # per-value ops: a sample at value v is (C,) + (v,) * dims


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


def _large_scale(base: np.ndarray, scales: np.ndarray, **params: Any) -> np.ndarray:
    """uint8 (B, 28, 28) digits -> float32 (B, 1, canvas, canvas): MNIST Large Scale's
    rescale, smoothing and arctan map (``large_scale.render_large_scale``)."""
    from .large_scale import render_large_scale

    return render_large_scale(base, scales, **params)[:, None]


def _native_lengths(samples: Any) -> Any:
    """Each signal's own length: a pool of variable-length series is NaN-padded at the end."""
    import torch

    if isinstance(samples, np.ndarray):
        return (~np.isnan(samples[:, 0, :])).sum(axis=-1)
    return (~torch.isnan(samples[:, 0, :])).sum(dim=-1).cpu().numpy()


def _fourier_resample_1d(samples: Any, length: int) -> Any:
    """Ideal down-scaling D_n of float signals (B, C, L) -> float32 (B, C, n), each from its own
    native length (the non-NaN prefix).

    torch in, torch out (the Dataset: one batched FFT per native length, on the samples'
    device); numpy in, numpy out (the builder: one series at a time in float64, one thread).
    """
    import torch

    from .fourier import resample_1d

    n = int(length)
    lengths = _native_lengths(samples)
    if isinstance(samples, np.ndarray):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            out = [
                resample_1d(torch.from_numpy(s[:, :k].astype(np.float64)), n).numpy()
                for s, k in zip(samples, lengths, strict=True)
            ]
        finally:
            torch.set_num_threads(threads)
        shape = (0, samples.shape[1], n)
        return np.stack(out).astype(np.float32) if out else np.zeros(shape, np.float32)
    result = samples.new_empty((samples.shape[0], samples.shape[1], n), dtype=torch.float32)
    for k in np.unique(lengths):
        where = torch.from_numpy(np.flatnonzero(lengths == k)).to(samples.device)
        part = samples.index_select(0, where)[..., : int(k)]
        result[where] = resample_1d(part, n).to(torch.float32)
    return result


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
        RenderOp("large_scale", "scales", by_value=False, fn=_large_scale),
        RenderOp("fourier_resample", "resolutions", by_value=True, fn=_fourier_resample),
        RenderOp(
            "fourier_resample_1d", "resolutions", by_value=True, fn=_fourier_resample_1d, dims=1
        ),
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
    """Base samples with a channel axis: (B, H, W) grey images become (B, 1, H, W); floating
    pools (signals, (B, C, L)) have theirs already."""
    return base[:, None] if base.ndim == 3 and base.dtype == np.uint8 else base


def as_float_base(base: np.ndarray) -> np.ndarray:
    """What a per-value op renders from: uint8 images as float32 in [0, 1] with a channel
    axis; floating pools as they are."""
    if np.issubdtype(base.dtype, np.floating):
        return base
    return to_unit_float(as_channels(base))


def render_uint8_block(
    pool: np.ndarray, op_name: str, params: dict[str, Any], source_index: np.ndarray, value: Any
) -> np.ndarray:
    """One block of samples from base samples, as a build task runs it in a worker.

    Value-wise ops get the uint8 digits and one value per sample; per-value ops get
    `as_float_base` samples and the block's one value.
    """
    op = get_render_op(op_name)
    base = pool[source_index]
    if op.by_value:
        return op.fn(as_float_base(base), value, **params)
    return op.fn(base, value, **params)
