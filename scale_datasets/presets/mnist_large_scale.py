"""MNIST Large Scale (Jansson & Lindeberg, ICPR 2020 / JMIV 2022), reconstructed
(PROTOCOLS.md section 5).

The original files are available only on request; this preset regenerates the protocol from its
published description and a third-party reconstruction, and never claims file equality. Pool:
source train followed by source test. Per realisation: a label-stratified 50,000 train /
10,000 val of the source's train part (recorded), and the whole test part as test. Train and val
digits are at the training scale (1, 2 or 4, or per digit log-uniform on [1, 4] for "1-4"); the
test split is stored at the training scale too (the original "sctr = scte" file), and
``ScaleDataset(path, "test", scales=TEST_SCALES)`` gives every test digit at each of the 17 test
scales 2^(k/4), k = -4..12 (the original test-only files). Each digit is rendered on access by
the `large_scale` op (``ops/large_scale.py``): bicubic spline rescale (anti-aliased below 1),
centred on a 112 x 112 canvas, Gaussian smoothing with sigma 7/8 s, then
(2/pi) arctan(0.02 (I - 128)), float32 in about [-0.763, 0.761].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..rng import Streams
from ..sources.common import Source
from ..splits import stratified_partition
from ..storage.format import SPLITS, realisation_group
from .base import MnistLikeSources, Plan, Preset, RenderSpec, SplitPlan, register, split_plan
from .params import PresetParams, option, require

TRAIN_SCALES = ("1", "2", "4", "1-4")


@dataclass(frozen=True)
class MNISTLargeScaleParams(PresetParams):
    realisations: tuple[int, ...] = option((0,), "Realisation ids to build.", lo=0)
    train_scale: str = option(
        "2", "Scale of train and val: 1, 2, 4, or 1-4 (log-uniform per digit).",
        choices=TRAIN_SCALES,
    )  # fmt: skip
    canvas: int = option(112, "Output side: the digit centred on a canvas x canvas image.", lo=28)
    n_train: int = option(50_000, "Train samples (from the source's train part).", lo=1)
    n_val: int = option(10_000, "Validation samples (from the source's train part).", lo=0)

    def check(self) -> None:
        require(self.canvas <= 1024, "canvas", f"must be <= 1024, got {self.canvas}")


class MNISTLargeScalePreset(MnistLikeSources, Preset):
    name = "mnist-large-scale"
    version = 1
    summary = (
        "MNIST Large Scale (Jansson & Lindeberg), RECONSTRUCTED: 50k/10k train/val from MNIST "
        "train at scale 1, 2, 4 or 1-4, the 10k test digits at 17 scales 0.5..8, 112 x 112, "
        "spline rescale + Gaussian smoothing + arctan, rendered on access"
    )
    params_type = MNISTLargeScaleParams
    layout = "on-access"
    normalisation = (0.0, 1.0)  # the arctan map already centres the values; none is applied
    # Never renumber: files record these codes as seed material.
    streams = Streams({"split": 1, "scales/train": 2, "scales/val": 3, "scales/test": 4})
    loader_example = (
        "from scale_datasets import ScaleDataset\n"
        "from scale_datasets.ops.large_scale import TEST_SCALES\n"
        "train = ScaleDataset('{path}', split='train', realisation=0)\n"
        "test_at_17_scales = ScaleDataset('{path}', split='test', scales=TEST_SCALES)"
    )

    def render_spec(self, params: Any) -> RenderSpec:
        return RenderSpec("large_scale", "scales", {"canvas": params.canvas})

    def _scales(self, params: Any, realisation: int, split: str, n: int) -> np.ndarray:
        if params.train_scale != "1-4":
            return np.full(n, float(params.train_scale), dtype=np.float32)
        rng = self.streams.stream(params.seed, realisation, f"scales/{split}")  # own stream each
        return np.exp(rng.uniform(0.0, np.log(4.0), n)).astype(np.float32)

    def plan(self, params: Any, source: Source) -> Plan:
        labels = np.asarray(source.labels)
        n_train_part = int(source.n_train)
        require(
            params.n_train + params.n_val <= n_train_part,
            "n_train",
            f"n_train + n_val = {params.n_train + params.n_val} exceeds the source's "
            f"{n_train_part} training images",
        )
        test = np.arange(n_train_part, len(labels))
        splits: list[SplitPlan] = []
        group_attrs: dict[str, dict[str, Any]] = {}
        for k in params.realisations:
            train, val = stratified_partition(
                labels[:n_train_part],
                [params.n_train, params.n_val],
                self.streams.stream(params.seed, k, "split"),
            )
            group_attrs[realisation_group(k)] = self.realisation_attrs(params, k)
            for split, index in zip(SPLITS, (train, val, test), strict=True):
                values = self._scales(params, k, split, len(index))
                splits.append(split_plan(k, split, labels, index, "scales", values))
        return Plan(splits=tuple(splits), group_attrs=group_attrs)

    def describe(self, params: dict[str, Any]) -> list[str]:
        law = params.get("train_scale", "?")
        law = "log-uniform on [1, 4] per digit" if law == "1-4" else law
        return [
            f"RECONSTRUCTED preset (not the original files): train/val scale {law}; test at "
            "the training scale, and at the 17 scales 2^(k/4), k = -4..12, with "
            "ScaleDataset(..., scales=TEST_SCALES)"
        ]


PRESET = register(MNISTLargeScalePreset())
