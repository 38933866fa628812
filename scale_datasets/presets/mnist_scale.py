"""MNIST-Scale, the SESN / DISCO protocol (PROTOCOLS.md section 1).

Pool: source train followed by source test (70,000 for MNIST). Per realisation: label-stratified
12,000 (train+val) and 50,000 (test) drawn from the pool, then 10,000 train / 2,000 val drawn
from the 12,000, with sklearn's per-class counts (SESN split with `train_test_split` twice); one
factor s ~ U[min_scale, max_scale] per image; the digit is scaled by s about the centre of the
canvas (the exact centre, or torchvision < 0.9's legacy centre), bicubic as PIL's affine transform
does it, zero fill. The rendered pixels are stored (layout "pixels").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ops.pil_affine import CENTRES, INTERPOLATIONS
from ..rng import Streams
from ..sources.common import Source
from ..splits import two_step_split
from ..storage.format import SPLITS, realisation_group
from .base import (
    MnistLikeSources,
    Plan,
    Preset,
    RenderSpec,
    SplitPlan,
    check_pool,
    register,
    split_plan,
)
from .params import PresetParams, option, require

# Normalisation used in training by SESN/DISCO (pixel values scaled to [0, 1] first).
MNIST_SCALE_MEAN = 0.0607
MNIST_SCALE_STD = 0.2161


@dataclass(frozen=True)
class MNISTScaleParams(PresetParams):
    """Every parameter that shapes the data; recorded verbatim in the file."""

    realisations: tuple[int, ...] = option(
        (0, 1, 2, 3, 4, 5), "Realisation ids to build.", lo=0, hi=2**31 - 1
    )
    min_scale: float = option(0.3, "Smallest scale factor.", lo=0.01, hi=100.0)
    max_scale: float = option(1.0, "Largest scale factor.", lo=0.01, hi=100.0)
    interpolation: str = option("bicubic", "Resampling filter.", choices=INTERPOLATIONS)
    centre: str = option(
        "exact",
        "Scaling centre: exact, or legacy (w/2 + 0.5, as torchvision < 0.9 rendered SESN's data).",
        choices=CENTRES,
    )
    canvas: int = option(28, "Output canvas side in pixels.", lo=1, hi=4096)
    n_train: int = option(10_000, "Train samples.", lo=1)
    n_val: int = option(2_000, "Validation samples.", lo=0)
    n_test: int = option(50_000, "Test samples.", lo=1)

    def check(self) -> None:
        require(
            self.min_scale <= self.max_scale,
            "min_scale",
            f"must be <= max_scale ({self.min_scale} > {self.max_scale})",
        )


class MNISTScalePreset(MnistLikeSources, Preset):
    name = "mnist-scale"
    # 2: sklearn's per-class split counts and the `centre` option.
    version = 2
    summary = (
        "MNIST-Scale (SESN/DISCO protocol): 10k/2k/50k stratified splits, "
        "s ~ U[0.3, 1] bicubic about the centre, 6 realisations"
    )
    params_type = MNISTScaleParams
    normalisation = (MNIST_SCALE_MEAN, MNIST_SCALE_STD)
    layout = "pixels"
    # Never renumber: files record these codes as seed material.
    streams = Streams({"split": 1, "scales/train": 2, "scales/val": 3, "scales/test": 4})
    loader_example = (
        "from scale_datasets import MNISTScale\n"
        "train = MNISTScale('{path}', split='train', realisation=0)"
    )

    def render_spec(self, params: Any) -> RenderSpec:
        return RenderSpec(
            "pil_affine_scale",
            "scales",
            {
                "canvas": params.canvas,
                "interpolation": params.interpolation,
                "centre": params.centre,
            },
        )

    def sample_shape(self, params: Any, source: Source) -> tuple[int, ...]:
        return (params.canvas, params.canvas)

    def plan(self, params: Any, source: Source) -> Plan:
        labels = np.asarray(source.labels)
        check_pool([params.n_train, params.n_val, params.n_test], labels)
        splits: list[SplitPlan] = []
        group_attrs: dict[str, dict[str, Any]] = {}
        for k in params.realisations:
            rng = self.streams.stream(params.seed, k, "split")
            members = two_step_split(labels, params.n_train, params.n_val, params.n_test, rng)
            group_attrs[realisation_group(k)] = self.realisation_attrs(params, k)
            for split in SPLITS:
                index = members[split]
                scales = (
                    self.streams.stream(params.seed, k, f"scales/{split}")
                    .uniform(params.min_scale, params.max_scale, size=len(index))
                    .astype(np.float32)
                )
                splits.append(split_plan(k, split, labels, index, "scales", scales))
        return Plan(splits=tuple(splits), group_attrs=group_attrs)


PRESET = register(MNISTScalePreset())
