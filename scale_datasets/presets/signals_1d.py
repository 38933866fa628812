"""1D signals at many lengths (PROTOCOLS.md section 8), from the UCR/UEA archive.

Pool: the archive's train series followed by its test series (any problem, univariate or
multivariate, equal or variable length), values as the archive has them (no scaling). Per
realisation: a label-stratified train / val / test split of the pool (by default the archive's
own train / test proportion, val carved from the train part) and one length n per sample from
``min_length`` to ``max_length`` in equal groups per split; a sample is the ideal down-scaling
D_n (the 1D rule of ``ops/fourier.py``) of its series, a float32 (C, n) signal. The pool is
stored once under /base as float64 (N, C, L), variable-length series NaN-padded at the end, so
every series is resampled from its own length; ``max_length`` defaults to the shortest series,
so no sample is ever up-sampled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidParameterError
from ..rng import Streams
from ..sources.common import Source
from ..sources.ts import FILL_MISSING_MODES
from .base import RenderSpec, register
from .multires import MultiResolutionPreset
from .params import PresetParams, option, require

FILL_MISSING = ("reject", *FILL_MISSING_MODES)
# The archive's train share kept for training when val is carved from it by default.
DEFAULT_TRAIN_SHARE = 0.8


@dataclass(frozen=True)
class Signals1DParams(PresetParams):
    problem: str = option(
        "",
        "Archive problem name; default: the --source name (with --source-dir: the prefix of "
        "<problem>_TRAIN.ts and <problem>_TEST.ts)",
    )
    min_length: int = option(0, "Shortest length n (0: max_length // 4).", lo=0, hi=1_000_000)
    max_length: int = option(
        0, "Longest length n (0: the shortest series of the pool, its native N).", lo=0,
        hi=1_000_000,
    )  # fmt: skip
    n_train: int = option(-1, "Train samples (-1: 80% of the archive's train part).", lo=-1)
    n_val: int = option(-1, "Validation samples (-1: the rest of the archive's train part).", lo=-1)
    n_test: int = option(-1, "Test samples (-1: the archive's test part).", lo=-1)
    fill_missing: str = option(
        "reject", "Missing values (?): reject them, or fill with zero or linear interpolation.",
        choices=FILL_MISSING,
    )  # fmt: skip

    def check(self) -> None:
        require(
            self.max_length == 0 or self.min_length <= self.max_length,
            "min_length",
            f"must be <= max_length ({self.min_length} > {self.max_length})",
        )


@dataclass(frozen=True, eq=False)
class SignalPool:
    """A series source as the builder stores it: float64 (N, C, L), NaN-padded at the end."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    n_train: int
    lengths: np.ndarray
    described: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        return self.described


def pool_of(series: Any, name: str) -> SignalPool:
    """The padded pool of a `sources.ucr.SeriesSource`."""
    lengths = np.asarray(series.lengths, dtype=np.int64)
    pool = np.full((len(lengths), series.channels, int(lengths.max())), np.nan)
    for i, s in enumerate(series.series):
        pool[i, :, : s.shape[1]] = s
    pool.flags.writeable = False
    described = dict(series.describe())
    described["name"] = name
    described["shape"] = list(pool.shape)
    return SignalPool(name, pool, series.labels, series.n_train, lengths, described)


class Signals1DPreset(MultiResolutionPreset):
    name = "signals-1d"
    version = 1
    summary = (
        "1D signals at many lengths: a UCR/UEA archive problem, train + test pooled, stratified "
        "splits, lengths N/4..N in equal groups, ideal 1D Fourier down-scaling, on access"
    )
    params_type = Signals1DParams
    # The problems packaged with the aeon / sktime wheels; any archive name is accepted.
    sources = ("gunpoint", "arrowhead", "osuleaf", "italypowerdemand", "basicmotions")
    source_dir_help = "<problem>_TRAIN.ts and <problem>_TEST.ts (UCR/UEA .ts format)"
    # Never renumber: files record these codes as seed material.
    streams = Streams({"split": 1, "lengths/train": 2, "lengths/val": 3, "lengths/test": 4})
    resolution_streams = "lengths"
    loader_example = (
        "from scale_datasets import ResolutionBatchSampler, ScaleDataset\n"
        "train = ScaleDataset('{path}', split='train', realisation=0)  # (C, n) float32\n"
        "sampler = ResolutionBatchSampler(train, batch_size=32, generator=0)"
    )

    def check_source_name(self, source: str | None) -> str:
        # Any archive problem, not only those listed: load_ucr checks how the name is spelled.
        return self.default_source if source is None else source

    def load_source(
        self,
        source: str | None,
        source_dir: Path | None,
        root: Path | None,
        download: bool,
        params: Any = None,
    ) -> Source:
        from ..sources.ucr import load_ucr

        problem = getattr(params, "problem", "") or self.check_source_name(source)
        fill = getattr(params, "fill_missing", "reject")
        series = load_ucr(
            problem,
            root=root,
            source_dir=source_dir,
            download=download,
            fill_missing=None if fill == "reject" else fill,
        )
        return pool_of(series, problem.lower())

    def render_spec(self, params: Any) -> RenderSpec:
        return RenderSpec("fourier_resample_1d", "resolutions")

    def sizes(self, params: Any, source: Source) -> list[int]:
        n_train_part = int(source.n_train)
        n_test_part = len(source.labels) - n_train_part
        train = round(DEFAULT_TRAIN_SHARE * n_train_part)
        defaults = [train, n_train_part - train, n_test_part]
        given = [params.n_train, params.n_val, params.n_test]
        return [d if g == -1 else g for g, d in zip(given, defaults, strict=True)]

    def resolutions(self, params: Any, source: Source) -> np.ndarray:
        """The lengths n = min_length..max_length (defaults: max_length = the shortest series,
        min_length = max_length // 4)."""
        shortest = int(np.min(source.lengths))
        top = params.max_length or shortest
        if top > shortest:
            raise InvalidParameterError(
                f"max_length: {top} exceeds the shortest series of the pool ({shortest}); "
                "samples are only ever down-scaled"
            )
        low = params.min_length or max(1, top // 4)
        if low > top:
            raise InvalidParameterError(f"min_length: {low} exceeds max_length {top}")
        return np.arange(low, top + 1)

    def train_attrs(self, source: Source, train: np.ndarray) -> dict[str, Any]:
        """Per-channel mean and population std of the train split's native series (NaN padding
        excluded), recorded with the realisation (`ScaleDataset.mean` / `.std`)."""
        series = source.images[train]
        return {
            "train_mean": np.nanmean(series, axis=(0, 2)),
            "train_std": np.nanstd(series, axis=(0, 2)),
        }

    def describe(self, params: dict[str, Any]) -> list[str]:
        problem = params.get("problem") or "the --source problem"
        return [
            f"problem: {problem}; values as the archive has them (no scaling); each sample is "
            "D_n of its series, n in equal groups"
        ]


PRESET = register(Signals1DPreset())
