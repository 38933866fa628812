"""Dynamic Scale MNIST (Basting et al., VISAPP 2024; PROTOCOLS.md section 4).

Pool: source train followed by source test (70,000 for MNIST). Per realisation (default 0, 1, 2):
SESN's two sklearn-stratified steps, 15,000 (train+val) / 50,000 (test) then 10,000 / 5,000, with
5,000 unused. One scale per sample, drawn once at build time from a law of
`scale_datasets.distributions` (the test split may have its own law) and stored as float32. The
digit is zero-padded and centred on a canvas x canvas image (default 168) and scaled about the
canvas centre with PIL's affine BICUBIC, fill 0, cropped to the canvas; nothing rendered is
stored: the Dataset renders on access. The exact mean and population std of the rendered train
split (pixel values / 255) are computed at build time and stored with the realisation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..distributions import ScaleLaw, parse_distribution
from ..errors import InvalidParameterError
from ..ops.canvas import scale_on_canvas
from ..ops.pil_affine import INTERPOLATIONS
from ..rng import Streams, keyed_generator
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

# Rows rendered at a time for the train statistics (about 30 MB of 168 x 168 uint8).
_STATS_BLOCK = 1024


@dataclass(frozen=True)
class DynamicMNISTParams(PresetParams):
    realisations: tuple[int, ...] = option((0, 1, 2), "Realisation ids to build.", lo=0)
    distribution: str = option(
        "loguniform(1, 8)",
        "Scale law of train and val, e.g. 'loguniform(1, 2.83)', 'discrete(1, 2, 4, 8)', "
        "'mixture(0.3 * uniform(1, 2), 0.7 * trunclognorm(0.7, 0.4, 1, 8))' "
        "(see `scale-datasets distributions`).",
    )
    test_distribution: str = option("", "Scale law of the test split (empty: the train law).")
    canvas: int = option(168, "Canvas side: the 28 x 28 digit zero-padded and centred.", lo=28)
    interpolation: str = option("bicubic", "Resampling filter.", choices=INTERPOLATIONS)
    n_train: int = option(10_000, "Train samples.", lo=1)
    n_val: int = option(5_000, "Validation samples.", lo=0)
    n_test: int = option(50_000, "Test samples.", lo=1)

    def check(self) -> None:
        # Laws are recorded in canonical form, so equal laws give equal files.
        object.__setattr__(self, "distribution", parse_distribution(self.distribution).canonical)
        if self.test_distribution:
            canonical = parse_distribution(self.test_distribution).canonical
            # The train law named again is the default: equal laws, equal files.
            same = canonical == self.distribution
            object.__setattr__(self, "test_distribution", "" if same else canonical)
        require(self.canvas <= 4096, "canvas", f"must be <= 4096, got {self.canvas}")


class DynamicMNISTPreset(MnistLikeSources, Preset):
    name = "dynamic-mnist"
    version = 1
    summary = (
        "Dynamic Scale MNIST (Basting et al.): 10k/5k/50k stratified, one scale per digit from a "
        "chosen law, digits on a 168 x 168 canvas rendered on access (PIL bicubic), 3 realisations"
    )
    params_type = DynamicMNISTParams
    layout = "on-access"
    # Never renumber: files record these codes as seed material. redraw/<split> keys the
    # per-epoch draws (epoch e >= 1; epoch 0 is the stored draw).
    streams = Streams(
        {
            "split": 1,
            "scales/train": 2,
            "scales/val": 3,
            "scales/test": 4,
            "redraw/train": 5,
            "redraw/val": 6,
            "redraw/test": 7,
        }
    )
    loader_example = (
        "from scale_datasets import ScaleDataset\n"
        "train = ScaleDataset('{path}', split='train', realisation=0, return_scale=True)\n"
        "print(train.mean, train.std)  # of the rendered train split"
    )

    def render_spec(self, params: Any) -> RenderSpec:
        op_params = {"canvas": params.canvas, "interpolation": params.interpolation}
        return RenderSpec("pil_affine_canvas", "scales", op_params)

    def plan(self, params: Any, source: Source) -> Plan:
        labels = np.asarray(source.labels)
        check_pool([params.n_train, params.n_val, params.n_test], labels)
        splits: list[SplitPlan] = []
        group_attrs: dict[str, dict[str, Any]] = {}
        recorded = dataclasses.asdict(params)
        laws = {split: _split_law(recorded, split) for split in SPLITS}
        for k in params.realisations:
            rng = self.streams.stream(params.seed, k, "split")
            members = two_step_split(labels, params.n_train, params.n_val, params.n_test, rng)
            attrs = self.realisation_attrs(params, k)
            for split in SPLITS:
                index = members[split]
                draw = self.streams.stream(params.seed, k, f"scales/{split}")
                scales = _drawn(laws[split], draw, len(index))
                splits.append(split_plan(k, split, labels, index, "scales", scales))
                if split == "train":
                    attrs.update(train_statistics(source.images[index], scales, params))
            group_attrs[realisation_group(k)] = attrs
        return Plan(splits=tuple(splits), group_attrs=group_attrs)

    def describe(self, params: dict[str, Any]) -> list[str]:
        return [
            f"scale law of train and val: {params['distribution']}",
            f"scale law of test: {params['test_distribution'] or params['distribution']}",
            f"canvas: {params['canvas']} x {params['canvas']}, the 28 x 28 digit centred",
        ]

    def redraw(
        self, params: dict[str, Any], realisation: int, split: str, epoch: int, n: int
    ) -> np.ndarray:
        """The scales of epoch `epoch` (>= 1) of a split: the split's law, a stream of its own."""
        code = self.streams.purposes[f"redraw/{split}"]
        rng = keyed_generator(params["seed"], realisation, code, epoch)
        return _drawn(_split_law(params, split), rng, n)

    def bin_origin(self, params: dict[str, Any], split: str) -> float:
        """floor(28 min_s) of Basting's scale bin, min_s the lower bound of the split's law."""
        return float(np.floor(28 * _split_law(params, split).support[0]))

    @staticmethod
    def scale_bins(origin: float, scales: np.ndarray) -> np.ndarray:
        """Basting's scale bin: round(28 s) - floor(28 min_s)."""
        return (np.rint(28 * scales.astype(np.float64)) - origin).astype(np.int64)


def _split_law(params: dict[str, Any], split: str) -> ScaleLaw:
    """The law of a split, from the params as a file records them (the test split's own law,
    else the train law); a user law must be registered in this process."""
    spec = params["test_distribution"] if split == "test" else ""
    spec = spec or params["distribution"]
    try:
        return parse_distribution(spec)
    except InvalidParameterError as exc:
        raise InvalidParameterError(
            f"{exc}; per-epoch redraws and scale bins draw from the file's law: register it with "
            "scale_datasets.register_distribution in every process that reads the file"
        ) from None


def _drawn(law: ScaleLaw, rng: np.random.Generator, n: int) -> np.ndarray:
    """n draws as the float32 scales files store; a law whose draws leave float32 is refused."""
    draws = law.sample(rng, n)
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        scales = draws.astype(np.float32)
        bad = ~(np.isfinite(scales) & (scales > 0) & np.isfinite(1 / scales))
    if bad.any():
        raise InvalidParameterError(
            f"distribution {law.canonical!r}: draws such as {float(draws[bad][0])!r} do not fit "
            "a float32 scale"
        )
    return scales


def train_statistics(digits: np.ndarray, scales: np.ndarray, params: Any) -> dict[str, float]:
    """Exact mean and population std of the rendered train split (pixel values / 255)."""
    total = total_sq = 0
    for start in range(0, len(digits), _STATS_BLOCK):
        block = scale_on_canvas(
            digits[start : start + _STATS_BLOCK],
            scales[start : start + _STATS_BLOCK],
            params.canvas,
            params.interpolation,
        ).astype(np.int64)
        total += int(block.sum())
        total_sq += int(np.square(block).sum())
    count = len(digits) * params.canvas * params.canvas
    mean = total / count
    variance = max(total_sq / count - mean * mean, 0.0)
    return {"train_mean": mean / 255, "train_std": float(np.sqrt(variance)) / 255}


PRESET = register(DynamicMNISTPreset())
