"""The multi-resolution protocol of the Fourier-layer paper (PROTOCOLS.md section 2), shared by
`mnist-multires` and `stl10-scale`, and in 1D by `signals-1d` (its lengths are the resolutions).

Pool: source train followed by source test. Per realisation: a label-stratified train / val /
test split of the pool; every sample gets one resolution r from min_resolution..max_resolution,
in equal groups per split (sizes differ by at most 1, nothing left over) assigned at random; a
sample is the ideal down-scaling D_r of its base image (pixel values / 255), an r x r image.
Nothing rendered is stored: the pool goes under /base once, and the Dataset renders on access
(layout "on-access"; `--materialise` also stores the rendered samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..rng import Streams
from ..sources.common import Source
from ..splits import equal_groups, stratified_partition
from ..storage.format import SPLITS, realisation_group
from .base import Plan, Preset, RenderSpec, SplitPlan, check_pool, split_plan
from .params import PresetParams, require


@dataclass(frozen=True)
class MultiResolutionParams(PresetParams):
    """Split sizes and the resolution range; subclasses declare them with their defaults."""

    min_resolution: int = 1
    max_resolution: int = 1
    n_train: int = 1
    n_val: int = 0
    n_test: int = 1

    def check(self) -> None:
        require(
            self.min_resolution <= self.max_resolution,
            "min_resolution",
            f"must be <= max_resolution ({self.min_resolution} > {self.max_resolution})",
        )

    @property
    def resolutions(self) -> np.ndarray:
        return np.arange(self.min_resolution, self.max_resolution + 1)


class MultiResolutionPreset(Preset):
    layout = "on-access"
    # Never renumber: files record these codes as seed material.
    streams = Streams(
        {"split": 1, "resolutions/train": 2, "resolutions/val": 3, "resolutions/test": 4}
    )
    # The resolutions of split s are drawn from the stream "<resolution_streams>/<s>".
    resolution_streams: ClassVar[str] = "resolutions"

    def render_spec(self, params: Any) -> RenderSpec:
        return RenderSpec("fourier_resample", "resolutions")

    def sizes(self, params: Any, source: Source) -> list[int]:
        """The train, val and test sizes."""
        return [params.n_train, params.n_val, params.n_test]

    def resolutions(self, params: Any, source: Source) -> np.ndarray:
        """The resolutions every split holds in equal groups."""
        return params.resolutions

    def train_attrs(self, source: Source, train: np.ndarray) -> dict[str, Any]:
        """What a realisation records about its train split (`train`: positions in the pool)."""
        return {}

    def plan(self, params: Any, source: Source) -> Plan:
        labels = np.asarray(source.labels)
        sizes = self.sizes(params, source)
        check_pool(sizes, labels)
        resolutions = self.resolutions(params, source)
        splits: list[SplitPlan] = []
        group_attrs: dict[str, dict[str, Any]] = {}
        for k in params.realisations:
            parts = stratified_partition(
                labels, sizes, self.streams.stream(params.seed, k, "split")
            )
            attrs = self.realisation_attrs(params, k)
            attrs.update(self.train_attrs(source, parts[0]))
            group_attrs[realisation_group(k)] = attrs
            for split, index in zip(SPLITS, parts, strict=True):
                rng = self.streams.stream(params.seed, k, f"{self.resolution_streams}/{split}")
                values = equal_groups(len(index), resolutions, rng).astype(np.int32)
                splits.append(split_plan(k, split, labels, index, "resolutions", values))
        return Plan(splits=tuple(splits), group_attrs=group_attrs)
