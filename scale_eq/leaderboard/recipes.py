"""The leaderboard's training recipes (PROTOCOLS.md section 7): named, frozen, printable.

A recipe fixes everything a run does besides the model, the realisation and the seed: the
dataset preset it reads, the optimiser and schedule, the augmentation, the loss, which
checkpoint is scored, what is evaluated, and the published numbers it is compared with. Later
presets plug in as one more `Recipe` here; the runner reads nothing else.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scale_datasets.errors import InvalidParameterError
from scale_datasets.ops.large_scale import TEST_SCALES as LARGE_SCALE_TEST_SCALES

__all__ = ["Published", "Recipe", "get_recipe", "list_recipes"]

AUGMENTATIONS = ("none", "random-scale", "circular-shift", "stl10")
LOSSES = ("cross-entropy", "consistency")
OPTIMISERS = ("adam", "adamw")


@dataclass(frozen=True)
class Published:
    """A published test error (%) of one model, with its spread and where it comes from.

    ``condition`` restricts it to data files whose ``distribution`` parameter equals it
    (Dynamic Scale MNIST is published per scale law); empty: any file of the preset.
    """

    model: str
    test_error: float
    sd: float | None
    source: str
    condition: str = ""
    consistency: float | None = None  # published "scale consistency" (fraction), if any


@dataclass(frozen=True)
class Recipe:
    """One protocol of the leaderboard. Every field is recorded in each run's record."""

    name: str
    preset: str
    summary: str
    models: tuple[str, ...]
    optimiser: str = "adam"
    lr: float = 0.01
    weight_decay: float = 0.0
    batch_size: int = 128
    epochs: int = 60
    milestones: tuple[int, ...] = (20, 40)
    gamma: float = 0.1
    scale_lr: float | None = None  # learnable internal scales, in their own parameter group
    model_scale_lr: tuple[tuple[str, float], ...] = ()  # per-model overrides of scale_lr
    augment: str = "none"
    loss: str = "cross-entropy"
    select: str = "best-val"  # the checkpoint scored on test: "best-val" or "last"
    realisations: tuple[int, ...] = (0,)
    seeds: tuple[int, ...] = (0,)
    scale_bins: tuple[float, ...] = ()  # edges of the per-scale accuracy bins
    grid: tuple[float, ...] = ()  # every test image at each of these scales (dynamic-mnist)
    grid_images: int | None = None  # test images of the grid (None: all)
    consistency_images: int | None = None  # test images of the consistency rates (None: all)
    eq_images: int = 256  # test images of the equivariance error
    # Per model, how inputs reach it: "native", or "resample:N" (ideal D_N to N x N).
    model_inputs: tuple[tuple[str, str], ...] = ()
    model_options: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    limits: tuple[tuple[str, int], ...] = ()  # smoke recipes: the first n samples of a split
    # Model keywords set from the data file: in_channels, num_classes, and for multi-length
    # files max_res / global_modes (the longest length) and min_length (the shortest).
    fit_model: tuple[str, ...] = ()
    baseline: str | None = "cnn_mnist"  # the model every other one is paired against
    published: tuple[Published, ...] = field(default=())

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("optimiser", self.optimiser, OPTIMISERS),
            ("augment", self.augment, AUGMENTATIONS),
            ("loss", self.loss, LOSSES),
            ("select", self.select, ("best-val", "last")),
        ):
            if value not in allowed:
                raise ValueError(f"recipe {self.name}: {name} {value!r} not in {allowed}")

    def model_input(self, model: str) -> str:
        return dict(self.model_inputs).get(model, "native")

    def options_for(self, model: str) -> dict[str, Any]:
        return dict(dict(self.model_options).get(model, ()))

    def scale_lr_for(self, model: str) -> float | None:
        return dict(self.model_scale_lr).get(model, self.scale_lr)

    def limit(self, split: str) -> int | None:
        return dict(self.limits).get(split)

    def to_json(self) -> dict[str, Any]:
        """Every field, JSON-ready (what `bench list --json` prints and records hold)."""
        out = dataclasses.asdict(self)
        out["model_inputs"] = dict(self.model_inputs)
        out["model_options"] = {m: dict(o) for m, o in self.model_options}
        out["limits"] = dict(self.limits)
        out["model_scale_lr"] = dict(self.model_scale_lr)
        return json.loads(json.dumps(out))  # tuples as lists: equal to a record's copy


_MNIST_SCALE_MODELS = (
    "cnn_mnist",
    "sesn_mnist_scalar",
    "sesn_mnist_vector",
    "sesn_mnist_isr",
    "sesn_mnist_isr_basting",
)
# Basting et al. train their model's shared scales at lr 0.005.
_BASTING_SCALE_LR = (("sesn_mnist_isr_basting", 0.005),)
_BASTING_MNIST = "Basting et al. 2024 (learnable ISR, their MNIST-Scale model)"
_SESN_SOURCE = "SESN (Sosnovik et al. 2020), table 2"
# Per-scale accuracy bins of MNIST-Scale's U[0.3, 1] law: 7 bins of 0.1.
_MNIST_SCALE_BINS = tuple(round(0.3 + 0.1 * i, 1) for i in range(8))
_DYNAMIC_GRID = tuple(float(s) for s in np.logspace(-1, 3.5, 45, base=2))
_BASTING = "Basting et al. 2024, table 1 (learned ISR)"

_RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            name="mnist-scale",
            preset="mnist-scale",
            summary="SESN protocol: Adam 0.01, batch 128, 60 epochs, lr x0.1 at 20 and 40, "
            "best-val checkpoint scored on the 50k test split, 6 realisations",
            models=_MNIST_SCALE_MODELS,
            scale_lr=0.01,
            model_scale_lr=_BASTING_SCALE_LR,
            realisations=tuple(range(6)),
            scale_bins=_MNIST_SCALE_BINS,
            published=(
                Published("cnn_mnist", 2.02, 0.07, _SESN_SOURCE),
                Published("sesn_mnist_scalar", 1.68, 0.06, _SESN_SOURCE + " (SESN, Hermite)"),
                Published("sesn_mnist_isr_basting", 1.72, 0.05, _BASTING_MNIST),
            ),
        ),
        Recipe(
            name="mnist-scale-plus",
            preset="mnist-scale",
            summary="mnist-scale with the '+' augmentation: every epoch each training digit "
            "rescaled about the centre by s ~ U[0.5, 2.0], cropped (bicubic on the device, "
            "within one grey level of PIL's)",
            models=_MNIST_SCALE_MODELS,
            scale_lr=0.01,
            model_scale_lr=_BASTING_SCALE_LR,
            augment="random-scale",
            realisations=tuple(range(6)),
            scale_bins=_MNIST_SCALE_BINS,
            published=(
                Published("cnn_mnist", 1.60, 0.09, _SESN_SOURCE + ', "+"'),
                Published("sesn_mnist_scalar", 1.42, 0.07, _SESN_SOURCE + ' (SESN, Hermite), "+"'),
                Published("sesn_mnist_isr_basting", 1.44, 0.09, _BASTING_MNIST + ', "+"'),
            ),
        ),
        Recipe(
            name="mnist-multires",
            preset="mnist-multires",
            summary="Fourier protocol: AdamW 0.01, wd 0.03, StepLR(20, 0.1), 60 epochs, batch "
            "128, one resolution per batch, circular-shift augmentation, consistency loss for "
            "Fourier models; final weights scored",
            models=("fourier_mnist", "cnn_mnist"),
            optimiser="adamw",
            weight_decay=3e-2,
            milestones=(20, 40),
            augment="circular-shift",
            loss="consistency",
            select="last",
            consistency_images=None,
            model_inputs=(("cnn_mnist", "resample:28"),),
            published=(
                Published("fourier_mnist", 1.11, None, "Rahman & Yeh 2023", consistency=0.9716),
                Published("cnn_mnist", 2.63, None, "Rahman & Yeh 2023 (CNN)", consistency=0.6621),
            ),
        ),
        Recipe(
            name="stl10-scale",
            preset="stl10-scale",
            summary="Fourier protocol on STL10-scale: AdamW 0.01, wd 0.01, StepLR(100, 0.1), "
            "200 epochs, batch 16, crop + flip + cutout, consistency loss; final weights",
            models=("fourier_stl",),
            optimiser="adamw",
            weight_decay=1e-2,
            batch_size=16,
            epochs=200,
            milestones=(100,),
            augment="stl10",
            loss="consistency",
            select="last",
            baseline=None,
            published=(
                Published("fourier_stl", 26.68, None, "Rahman & Yeh 2023", consistency=0.6770),
            ),
        ),
        Recipe(
            name="dynamic-mnist",
            preset="dynamic-mnist",
            summary="Basting's toy protocol: sesn_toy, Adam 0.01, lr x0.1 at 20 and 40, 60 "
            "epochs, batch 128, scale lr 0.01, best-val checkpoint, 3 seeds, plus every test "
            "digit at 45 scales 0.5..11.3",
            models=("sesn_toy",),
            scale_lr=0.01,
            realisations=(0, 1, 2),
            scale_bins=(1.0, 1.41, 2.0, 2.83, 4.0, 5.66, 8.0),
            grid=_DYNAMIC_GRID,
            baseline=None,
            published=(
                Published("sesn_toy", 2.29, 0.07, _BASTING, condition="loguniform(1, 2.83)"),
                Published("sesn_toy", 2.51, 0.08, _BASTING, condition="loguniform(1, 4.76)"),
                Published("sesn_toy", 2.87, 0.07, _BASTING, condition="loguniform(1, 8)"),
            ),
        ),
        Recipe(
            name="signals-1d",
            preset="signals-1d",
            summary="1D signals at many lengths: fourier_1d fitted to the file (channels, "
            "classes, lengths), AdamW 0.01, wd 0.03, lr x0.1 at 40, 60 epochs, batch 32 of one "
            "length, consistency loss; final weights scored per length, both consistency "
            "rates, equivariance error",
            models=("fourier_1d",),
            optimiser="adamw",
            weight_decay=3e-2,
            batch_size=32,
            milestones=(40,),
            loss="consistency",
            select="last",
            fit_model=("in_channels", "num_classes", "max_res", "global_modes", "min_length"),
            eq_images=64,
            model_options=(("fourier_1d", (("width", 0.5),)),),
            baseline=None,
        ),
        Recipe(
            name="mnist-large-scale",
            preset="mnist-large-scale",
            summary="MNIST Large Scale (reconstructed): train at the file's training scale, "
            "Adam 0.01, lr x0.1 at 20 and 40, 60 epochs, batch 128, best-val checkpoint; every "
            "test digit at the 17 test scales 0.5..8 (accuracy against test scale)",
            models=("cnn_mnist", "sesn_mnist_scalar"),
            scale_lr=0.01,
            grid=LARGE_SCALE_TEST_SCALES,
            eq_images=64,
        ),
        Recipe(
            name="smoke",
            preset="mnist-scale",
            summary="a CPU smoke test of the runner: mnist-scale, 3 epochs on the first 2,000 "
            "training digits, 500 val and 2,000 test; the CNN at full width, SESN narrow",
            models=("cnn_mnist", "sesn_mnist_scalar"),
            epochs=3,
            milestones=(2,),
            scale_lr=0.01,
            scale_bins=_MNIST_SCALE_BINS,
            eq_images=64,
            model_options=(("sesn_mnist_scalar", (("channels", (8, 16, 24)),)),),
            limits=(("train", 2000), ("val", 500), ("test", 2000)),
        ),
    )
}


def list_recipes() -> list[Recipe]:
    return list(_RECIPES.values())


def get_recipe(name: str) -> Recipe:
    try:
        return _RECIPES[name]
    except KeyError:
        raise InvalidParameterError(
            f"recipe: unknown recipe {name!r}; known: {', '.join(_RECIPES)}"
        ) from None
