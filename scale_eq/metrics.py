"""Scale-equivariance error, scale consistency, per-resolution and per-scale accuracy
(PROTOCOLS 6.3, 7).

Scaling is the ideal down-scaling D_r of :mod:`scale_datasets.ops.fourier` throughout. For a map
f from real inputs (B, C, N[, N]) to features (B, C', N'[, N']) the equivariance error at r is

    err(r) = || D_r'(f(x)) - f(D_r(x)) ||^2 / || D_r'(f(x)) ||^2

with ``r' = ceil(r / pool)`` the feature size of an r-sized input (``r' = r`` without pooling),
compared on the modes ``|k| <= (r' - 1) // 2`` of both sides (the Nyquist mode of an even grid is
not a well-defined frequency and D_r' drops it). The ratio is taken per sample and channel and
averaged (``per_sample=True``), or over the whole batch at once. The reported mean is over the
*pairs* (x, D_r x): the input's own size N, if listed, is the reference and its trivial zero is
not averaged in, so the mean divides by ``|S| - 1`` when N is in S (the published tester divides
by ``|S|``, which shrinks the error).

Scale-group models (SESN) carry a scale axis instead: :func:`scale_group_equivariance_error`
shrinks the image on its canvas, shifts the features' scale axis by the matching number of
internal steps and compares the two on the shrunk region (PROTOCOLS 6.3, last line).

:func:`accuracy_per_scale` streams any dataset of (image, label, scale) items, such as the
45-scale evaluation grid of Dynamic Scale MNIST (``ScaleDataset(..., scales=grid,
return_scale=True)``), and gives the accuracy at each distinct scale, ready to plot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from scale_datasets.errors import InvalidParameterError
from scale_datasets.ops.fourier import (
    resample,
    resample_1d,
    resample_spectrum,
    resample_spectrum_1d,
)

__all__ = [
    "EquivarianceReport",
    "GroupEquivarianceReport",
    "ScaleAccuracy",
    "accuracy_per_resolution",
    "accuracy_per_scale",
    "equivariance_error",
    "final_features",
    "scale_consistency",
    "scale_group_equivariance_error",
]


@dataclass
class EquivarianceReport:
    """Result of :func:`equivariance_error`.

    ``per_resolution[r]`` is err(r); ``mean`` the mean over the pairs (every listed r except the
    reference size); ``per_sample[r]`` (when asked for) the error of each sample (its channels
    averaged), in input order.
    """

    per_resolution: dict[int, float]
    mean: float
    reference: int
    per_sample: dict[int, torch.Tensor] | None = field(default=None, repr=False)


def _resample(x: torch.Tensor, r: int, dims: int) -> torch.Tensor:
    return resample(x, r) if dims == 2 else resample_1d(x, r)


def _resample_spectrum(s: torch.Tensor, r: int, dims: int) -> torch.Tensor:
    return resample_spectrum(s, r) if dims == 2 else resample_spectrum_1d(s, r)


def _spectrum(x: torch.Tensor, dims: int) -> torch.Tensor:
    return torch.fft.fftn(x, dim=tuple(range(-dims, 0)), norm="forward")


def _size(x: torch.Tensor, dims: int) -> int:
    if x.dim() != dims + 2:
        raise ValueError(f"expected a (B, C{', N' * dims}) tensor, got {tuple(x.shape)}")
    if dims == 2 and x.shape[-1] != x.shape[-2]:
        raise ValueError(f"expected square maps, got {tuple(x.shape[-2:])}")
    return x.shape[-1]


def _device(f: object) -> torch.device | None:
    if isinstance(f, nn.Module):
        for p in f.parameters():
            return p.device
    return None


@contextmanager
def _eval_mode(f: object) -> Iterator[None]:
    """Evaluate modules in eval mode (no dropout, running stats), restoring the mode after."""
    if isinstance(f, nn.Module):
        modes = [(m, m.training) for m in f.modules()]  # each one's own flag, not just the top's
        f.eval()
        try:
            yield
        finally:
            for m, training in modes:
                m.training = training
    else:
        yield


def _live_ratio(e: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(e / s where the reference energy s > 0, else 0; the mask s > 0 of live channels)."""
    live = s > 0
    return torch.where(live, e / torch.where(live, s, 1), 0), live


def _chunks(x: torch.Tensor, batch_size: int | None) -> Iterable[torch.Tensor]:
    step = batch_size or x.shape[0] or 1
    for start in range(0, x.shape[0], step):
        yield x[start : start + step]


class _FinalFeatures(nn.Module):
    """A module (so eval mode and the device follow the model) returning its final spectrum."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, return_all=True).features


def final_features(model: nn.Module) -> nn.Module:
    """f(x) = the final feature spectrum of a Fourier classifier (use ``output_spectrum=True``)."""
    return _FinalFeatures(model)


def equivariance_error(
    f: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    resolutions: Sequence[int],
    *,
    per_sample: bool = True,
    input_spectrum: bool = False,
    output_spectrum: bool = False,
    pool_window: int = 1,
    output_resolution: Callable[[int], int] | None = None,
    dims: int = 2,
    batch_size: int | None = None,
) -> EquivarianceReport:
    """err(r) for each r in ``resolutions`` (all <= N) and their mean over pairs; see module doc.

    Args:
        f: module or callable; real inputs -> real features, unless the flags below say spectra.
        x: real inputs (B, C, N, N), or (B, C, N) with ``dims=1``.
        resolutions: input sizes r to compare with; N itself may be listed (the reference).
        per_sample: ratio per sample and channel, then averaged (else one ratio per batch).
        input_spectrum: f takes the full spectrum (fft norm "forward") instead of real inputs.
        output_spectrum: f returns the full spectrum of its features instead of real maps.
        pool_window: total pooling of f; the feature size of an r input is ceil(r / pool_window).
        output_resolution: overrides that rule (r -> feature size).
        dims: 2 for images, 1 for signals.
        batch_size: evaluate f on chunks of this many samples (default: all at once).

    Channels whose reference energy is exactly zero (dead channels) are left out of the average;
    a resolution where every channel is dead counts 0 if f(D_r x) is zero there too, else inf.
    Runs without gradients and with modules in eval mode.
    """
    n = _size(x, dims)
    sizes = sorted({int(r) for r in resolutions})
    if not sizes or sizes[0] < 1 or sizes[-1] > n:
        raise ValueError(f"resolutions must lie in [1, {n}] (the input size), got {resolutions}")
    out_size = output_resolution or (lambda r: math.ceil(r / pool_window))

    def as_input(t: torch.Tensor) -> torch.Tensor:
        return _spectrum(t, dims) if input_spectrum else t

    def as_spectrum(t: torch.Tensor) -> torch.Tensor:
        return t if output_spectrum else _spectrum(t, dims)

    pairs = [r for r in sizes if r != n]
    num = {r: 0.0 for r in pairs}
    den = {r: 0.0 for r in pairs}
    ratio_sum = {r: 0.0 for r in pairs}
    ratio_count = {r: 0 for r in pairs}
    samples: dict[int, list[torch.Tensor]] = {r: [] for r in pairs}
    device = _device(f)
    reduce_dims = tuple(range(2, 2 + dims))
    with torch.no_grad(), _eval_mode(f):
        for chunk in _chunks(x, batch_size):
            if device is not None:
                chunk = chunk.to(device)
            ref = as_spectrum(f(as_input(chunk)))
            for r in pairs:
                rr = out_size(r)
                got = as_spectrum(f(as_input(_resample(chunk, r, dims))))
                if got.shape[-1] != rr:
                    raise ValueError(
                        f"f maps size {r} to {got.shape[-1]}, expected {rr}: "
                        "set pool_window or output_resolution"
                    )
                a = _resample_spectrum(ref, rr, dims)
                b = _resample_spectrum(got, rr, dims)  # drops its Nyquist, like a
                e = (a - b).abs().square().sum(reduce_dims)  # (B, C')
                s = a.abs().square().sum(reduce_dims)
                if per_sample:
                    ratio, live = _live_ratio(e, s)
                    ratio_sum[r] += ratio.sum().item()
                    ratio_count[r] += int(live.sum())
                    count = live.sum(1)
                    per = ratio.sum(1) / count.clamp_min(1)
                    dead = (count == 0) & (e.sum(1) > 0)
                    samples[r].append(torch.where(dead, math.inf, per).cpu())
                num[r] += e.sum().item()
                den[r] += s.sum().item()

    def fallback(r: int) -> float:
        return 0.0 if num[r] == 0 else math.inf

    if per_sample:
        per_res = {
            r: ratio_sum[r] / ratio_count[r] if ratio_count[r] else fallback(r) for r in pairs
        }
    else:
        per_res = {r: num[r] / den[r] if den[r] else fallback(r) for r in pairs}
    mean = sum(per_res.values()) / len(pairs) if pairs else 0.0
    if n in sizes:
        per_res[n] = 0.0
    per_res = dict(sorted(per_res.items()))
    per_sample_out = {r: torch.cat(v) for r, v in samples.items()} if per_sample else None
    return EquivarianceReport(per_res, mean, n, per_sample_out)


def _logits(out: object) -> torch.Tensor:
    return out.logits if hasattr(out, "logits") else out  # FourierOutput or a tensor


def _predict(model: Callable, x: torch.Tensor, r: int, dims: int) -> torch.Tensor:
    """Predicted classes of x at size r (x itself at its own size, so even sizes keep Nyquist)."""
    inp = x if r == x.shape[-1] else _resample(x, r, dims)
    return _logits(model(inp)).argmax(-1)


def scale_consistency(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    resolutions: Sequence[int],
    *,
    dims: int = 2,
    batch_size: int | None = None,
) -> float:
    """Fraction of samples whose predicted class is the same at every listed size of the image.

    Each sample is scaled to every r (D_r; its own size means the image as given) and classified
    separately; resolutions above the image size are ideal up-scalings.
    """
    _size(x, dims)
    if not resolutions:
        raise ValueError("resolutions must not be empty")
    same = total = 0
    device = _device(model)
    with torch.no_grad(), _eval_mode(model):
        for chunk in _chunks(x, batch_size):
            if device is not None:
                chunk = chunk.to(device)
            preds = torch.stack([_predict(model, chunk, int(r), dims) for r in resolutions])
            same += int((preds == preds[:1]).all(0).sum())
            total += chunk.shape[0]
    return same / total if total else math.nan


def accuracy_per_resolution(
    model: Callable[[torch.Tensor], torch.Tensor],
    data: tuple[torch.Tensor, torch.Tensor] | Iterable[Sequence[torch.Tensor]],
    resolutions: Sequence[int],
    *,
    dims: int = 2,
    batch_size: int = 256,
) -> dict[int, float]:
    """Accuracy of ``model`` on every sample scaled to each r (D_r; own size = as given).

    ``data`` is a pair of tensors ``(x, y)`` or an iterable of batches whose first two items
    are inputs and labels (a DataLoader; each batch must hold one input size).
    """
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        x, y = data
        batches: Iterable = zip(_chunks(x, batch_size), _chunks(y, batch_size), strict=True)
    else:
        batches = data
    correct = {int(r): 0 for r in resolutions}
    total = 0
    device = _device(model)
    with torch.no_grad(), _eval_mode(model):
        for batch in batches:
            xb, yb = batch[0], batch[1]
            _size(xb, dims)
            if device is not None:
                xb, yb = xb.to(device), yb.to(device)
            for r in correct:
                correct[r] += int((_predict(model, xb, r, dims) == yb).sum())
            total += xb.shape[0]
    return {r: c / total if total else math.nan for r, c in correct.items()}


@dataclass(frozen=True, eq=False)
class ScaleAccuracy:
    """Result of :func:`accuracy_per_scale`: one row per distinct scale, in ascending order.

    ``scales`` (S,) float32 holds the items' exact scale values; ``correct`` and ``counts`` (S,)
    int64 the correct predictions and the items at each scale; ``accuracy`` (S,) float64 is
    ``correct / counts``. The arrays are read-only. ``mean`` averages the per-scale accuracies
    (each scale weighs the same: the mean height of the curve); ``overall`` pools all items. On a
    grid, where every sample appears at every scale, the two agree.
    """

    scales: np.ndarray
    correct: np.ndarray
    counts: np.ndarray

    def __post_init__(self) -> None:
        for name, dtype in (("scales", np.float32), ("correct", np.int64), ("counts", np.int64)):
            value = np.array(getattr(self, name), dtype=dtype).reshape(-1)
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def accuracy(self) -> np.ndarray:
        """``correct / counts`` per scale (float64; every listed scale has items)."""
        return self.correct / self.counts

    @property
    def mean(self) -> float:
        """Mean of the per-scale accuracies (nan without rows)."""
        return float(self.accuracy.mean()) if len(self.counts) else math.nan

    @property
    def overall(self) -> float:
        """Accuracy over all items, every scale pooled (nan without items)."""
        total = int(self.counts.sum())
        return int(self.correct.sum()) / total if total else math.nan

    def to_rows(self) -> list[dict[str, float | int]]:
        """One dict per scale, ``{"scale", "accuracy", "correct", "count"}``: rows for
        ``csv.DictWriter`` (the scale as the exact value of its float32)."""
        return [
            {"scale": float(s), "accuracy": float(a), "correct": int(c), "count": int(n)}
            for s, a, c, n in zip(
                self.scales, self.accuracy, self.correct, self.counts, strict=True
            )
        ]

    def as_dict(self) -> dict[str, list[float] | list[int]]:
        """The same columns as lists, ``{"scale": [...], "accuracy": [...], ...}``: to plot
        ``accuracy`` against ``scale``, or to hand to ``pandas.DataFrame``."""
        return {
            "scale": [float(s) for s in self.scales],
            "accuracy": self.accuracy.tolist(),
            "correct": self.correct.tolist(),
            "count": self.counts.tolist(),
        }


def _batch_scales(value: Any, n: int) -> np.ndarray:
    """The batch's scales as float32 (n,), from the collated third element of its items."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    scales = np.asarray(value)
    if scales.shape != (n,) or not (
        np.issubdtype(scales.dtype, np.floating) or np.issubdtype(scales.dtype, np.integer)
    ):
        raise InvalidParameterError(
            "dataset: the third element of each item must be its scale, one number; got a batch "
            f"of shape {scales.shape} and dtype {scales.dtype} for {n} items"
        )
    scales = scales.astype(np.float32)
    if not np.isfinite(scales).all():
        raise InvalidParameterError("dataset: item scales must be finite")
    return scales


def accuracy_per_scale(
    model: Callable[[torch.Tensor], Any],
    dataset: Dataset,
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    num_workers: int = 0,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> ScaleAccuracy:
    """Accuracy of ``model`` at each distinct scale of the items of ``dataset``.

    ``dataset`` yields ``(image, label, scale, ...)`` items: a ``ScaleDataset`` opened with
    ``return_scale=True`` (an evaluation grid ``scales=`` or a split's own scales), or any torch
    Dataset of that shape. It is read in order through a DataLoader of ``batch_size`` items and
    ``num_workers`` workers, so a grid is rendered batch by batch and never held whole. Each
    batch of images goes to ``device`` (default: the device of the model's parameters; left
    where it is for a model without parameters), through ``transform`` if given (a batch
    transform on that device, e.g. normalisation), and into the model, in eval mode (restored
    after) and without gradients. The model returns logits (B, classes), or an object with
    ``.logits``; the prediction is their argmax. Items are grouped by their scale as float32,
    exactly: one row per distinct value.

    Raises:
        InvalidParameterError: ``dataset`` does not return scales (a ``ScaleDataset`` without
            ``return_scale=True``, or items without a third, numeric element), or
            ``batch_size`` < 1, ``num_workers`` < 0.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidParameterError(f"batch_size: must be an integer >= 1, got {batch_size!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise InvalidParameterError(f"num_workers: must be an integer >= 0, got {num_workers!r}")
    if getattr(dataset, "return_scale", None) is False:
        raise InvalidParameterError(
            "dataset: must return each item's scale; open it with return_scale=True"
        )
    if getattr(dataset, "render_on", "dataset") == "device":
        raise InvalidParameterError(
            "dataset: render_on='device' hands over unrendered digits; open it with "
            "render_on='dataset' (or render with render_batch in your own loop)"
        )
    target = torch.device(device) if device is not None else _device(model)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    scale_parts: list[np.ndarray] = []  # per item: its scale and whether it was classified right
    hit_parts: list[np.ndarray] = []
    with torch.no_grad(), _eval_mode(model):
        for batch in loader:
            if not isinstance(batch, (list, tuple)) or len(batch) < 3:
                raise InvalidParameterError(
                    "dataset: items must be (image, label, scale, ...); open a ScaleDataset "
                    "with return_scale=True"
                )
            x, y = batch[0], torch.as_tensor(batch[1])
            scales = _batch_scales(batch[2], len(y))
            if target is not None:
                x, y = x.to(target), y.to(target)
            if transform is not None:
                x = transform(x)
            predicted = _logits(model(x)).argmax(-1)
            if predicted.shape != y.shape:
                raise InvalidParameterError(
                    f"model: predicted classes of shape {tuple(predicted.shape)} for labels of "
                    f"shape {tuple(y.shape)}; it must return logits (B, classes)"
                )
            scale_parts.append(scales)
            hit_parts.append((predicted == y).cpu().numpy())
    scales = np.concatenate(scale_parts) if scale_parts else np.empty(0, np.float32)
    hits = np.concatenate(hit_parts) if hit_parts else np.empty(0, bool)
    keys, inverse = np.unique(scales, return_inverse=True)
    return ScaleAccuracy(
        scales=keys,
        correct=np.bincount(inverse[hits], minlength=len(keys)),
        counts=np.bincount(inverse, minlength=len(keys)),
    )


@dataclass
class GroupEquivarianceReport:
    """Result of :func:`scale_group_equivariance_error`.

    ``error`` is the mean over samples, channels and compared scales; ``per_scale[j]`` the mean
    for the output scale j of the shrunk image (compared with scale j + shift of the original).
    """

    error: float
    per_scale: list[float]
    size: int
    shift: int


def _centre(n: int, size: int) -> tuple[int, int]:
    left = (n - size) // 2
    return left, left + size


def scale_group_equivariance_error(
    f: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    size: int,
    *,
    shift: int = 1,
    margin: int = 0,
    batch_size: int | None = None,
) -> GroupEquivarianceReport:
    """Scale-equivariance error of a map onto the scale group, for one rescaling.

    The image x (B, C, N, N) is shrunk to ``size`` (the ideal D_size) and zero-padded back to
    N x N in the centre: its content is smaller by ``q = N / size``. For a scale convolution whose
    internal scales step by q, ``f(shrunk)[:, :, j]`` should equal ``D_size(f(x)[:, :, j + shift])``
    on the shrunk region, with ``shift`` the number of internal steps that make q (1 when the
    scales step by exactly q; 0 for features without a scale axis, (B, C, N, N)). Then

        err = || D_size(f(x))[:, :, shift:] - crop(f(shrunk))[:, :, :S - shift] ||^2
              / || D_size(f(x))[:, :, shift:] ||^2

    per sample, channel and scale, averaged (those with zero reference energy left out), after
    cropping ``margin`` samples off every side of the ``size`` x ``size`` region (zero padding
    and the periodic extension of D act near the border). f may pool: features of N / p samples
    per side are compared on the region's p-grid (``size`` and the region's offset
    ``(N - size) // 2`` must be multiples of p, since pooling commutes only with translations
    by p; ``margin`` then counts feature samples). Runs without gradients and with modules in
    eval mode.
    """
    n = _size(x, 2)
    if not 1 <= size <= n or not 0 <= 2 * margin < size or shift < 0:
        raise ValueError(
            f"need 1 <= size <= N = {n}, 0 <= 2 * margin < size and shift >= 0; "
            f"got size {size}, margin {margin}, shift {shift}"
        )
    lo, hi = _centre(n, size)
    sums: torch.Tensor | None = None
    counts: torch.Tensor | None = None
    device = _device(f)
    with torch.no_grad(), _eval_mode(f):
        for chunk in _chunks(x, batch_size):
            if device is not None:
                chunk = chunk.to(device)
            shrunk = torch.zeros_like(chunk)
            shrunk[..., lo:hi, lo:hi] = resample(chunk, size)
            ref, got = f(chunk), f(shrunk)
            nf = ref.shape[-1]
            pool = n // nf if nf and n % nf == 0 else 0
            if (
                got.shape != ref.shape
                or ref.shape[-2] != nf
                or not pool
                or lo % pool
                or size % pool
            ):
                raise ValueError(
                    f"f must map {n} x {n} to square maps of N / p samples, with the shrunk "
                    f"region {lo}..{hi} on the p-grid; got {tuple(ref.shape)}"
                )
            if ref.dim() == 4:
                if shift:
                    raise ValueError("features without a scale axis need shift=0")
                ref, got = ref[:, :, None], got[:, :, None]
            scales = ref.shape[2]
            if shift >= scales:
                raise ValueError(f"shift {shift} leaves no scale of {scales} to compare")
            b, c = ref.shape[:2]
            fs, fl = size // pool, lo // pool  # the shrunk region on the feature grid
            if 2 * margin >= fs:
                raise ValueError(f"margin {margin} leaves nothing of the {fs}-sample region")
            a = resample(ref.reshape(b, -1, nf, nf), fs).reshape(b, c, scales, fs, fs)
            a = a[:, :, shift:]
            g = got[:, :, : scales - shift, ..., fl : fl + fs, fl : fl + fs]
            inner = slice(margin, fs - margin)
            a, g = a[..., inner, inner], g[..., inner, inner]
            e = (a - g).square().sum((-2, -1))  # (B, C, S - shift)
            ratio, live = _live_ratio(e, a.square().sum((-2, -1)))
            part_sum, part_count = ratio.sum((0, 1)).cpu(), live.sum((0, 1)).cpu()
            sums = part_sum if sums is None else sums + part_sum
            counts = part_count if counts is None else counts + part_count
    assert sums is not None and counts is not None
    per_scale = (sums / counts.clamp_min(1)).tolist()
    error = float(sums.sum() / counts.sum().clamp_min(1))
    return GroupEquivarianceReport(error, per_scale, size, shift)
