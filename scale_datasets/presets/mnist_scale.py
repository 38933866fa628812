"""MNIST-Scale, the SESN / DISCO protocol (PROTOCOLS.md section 1).

Pool: source train followed by source test (70,000 for MNIST). Per realisation: label-stratified
12,000 (train+val) and 50,000 (test) drawn from the pool, then 10,000 train / 2,000 val drawn
from the 12,000; one factor s ~ U[min_scale, max_scale] per image; the digit is scaled by s about
the exact centre of the canvas, bicubic as PIL's affine transform does it, zero fill.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidParameterError
from ..ops.scaling import scale_about_centre
from ..parallel import worker_state
from ..rng import seed_material, stream
from ..splits import stratified_partition
from ..storage.format import canonical_json, realisation_group
from .base import Plan, RenderTask, SplitPlan, register

INTERPOLATIONS = ("bicubic", "bilinear", "nearest")
SPLITS = ("train", "val", "test")

# Normalisation used in training by SESN/DISCO (pixel values scaled to [0, 1] first).
MNIST_SCALE_MEAN = 0.0607
MNIST_SCALE_STD = 0.2161


def _require(ok: bool, field_name: str, message: str) -> None:
    if not ok:
        raise InvalidParameterError(f"{field_name}: {message}")


@dataclass(frozen=True)
class MNISTScaleParams:
    """Every parameter that shapes the data; recorded verbatim in the file."""

    realisations: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    min_scale: float = 0.3
    max_scale: float = 1.0
    interpolation: str = "bicubic"
    canvas: int = 28
    n_train: int = 10_000
    n_val: int = 2_000
    n_test: int = 50_000
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "realisations", tuple(int(k) for k in self.realisations))
        _require(len(self.realisations) > 0, "realisations", "must be >= 1")
        _require(all(k >= 0 for k in self.realisations), "realisations", "ids must be >= 0")
        _require(
            len(set(self.realisations)) == len(self.realisations),
            "realisations",
            "ids must be distinct",
        )
        for name in ("min_scale", "max_scale"):
            value = getattr(self, name)
            _require(math.isfinite(value) and value > 0, name, f"must be > 0, got {value}")
        _require(
            self.min_scale <= self.max_scale,
            "min_scale",
            f"must be <= max_scale ({self.min_scale} > {self.max_scale})",
        )
        _require(
            self.interpolation in INTERPOLATIONS,
            "interpolation",
            f"must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}",
        )
        _require(1 <= self.canvas <= 4096, "canvas", f"must be in 1..4096, got {self.canvas}")
        _require(self.n_train >= 1, "n_train", f"must be >= 1, got {self.n_train}")
        _require(self.n_val >= 0, "n_val", f"must be >= 0, got {self.n_val}")
        _require(self.n_test >= 1, "n_test", f"must be >= 1, got {self.n_test}")
        _require(0 <= self.seed < 2**63, "seed", f"must be in 0..2^63-1, got {self.seed}")

    def to_json(self) -> str:
        return canonical_json(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> MNISTScaleParams:
        return cls(**json.loads(text))


def render_block(
    source_index: np.ndarray, scales: np.ndarray, canvas: int, interpolation: str
) -> np.ndarray:
    """Pixels of one block of samples; runs in a worker holding the source pool."""
    pool: np.ndarray = worker_state()
    return scale_about_centre(
        pool[source_index], scales, canvas=canvas, interpolation=interpolation
    )


class MNISTScalePreset:
    name = "mnist-scale"
    version = 1
    summary = (
        "MNIST-Scale (SESN/DISCO protocol): 10k/2k/50k stratified splits, "
        "s ~ U[0.3, 1] bicubic about the centre, 6 realisations"
    )
    params_type = MNISTScaleParams

    def make_params(
        self,
        realisations: int | None = None,
        realisation_ids: tuple[int, ...] | None = None,
        **kwargs: Any,
    ) -> MNISTScaleParams:
        """Params from user options: `realisations=N` means ids 0..N-1."""
        if realisation_ids:
            kwargs["realisations"] = tuple(realisation_ids)
        elif realisations is not None:
            _require(realisations >= 1, "realisations", f"must be >= 1, got {realisations}")
            kwargs["realisations"] = tuple(range(realisations))
        return MNISTScaleParams(**kwargs)

    def load_source(
        self, source: str, source_dir: Path | None, root: Path | None, download: bool
    ) -> Any:
        from ..sources import load_mnist_like

        return load_mnist_like(source, source_dir=source_dir, root=root, download=download)

    def plan(self, params: MNISTScaleParams, source: Any) -> Plan:
        labels = np.asarray(source.labels)
        pool = len(labels)
        total = params.n_train + params.n_val + params.n_test
        if total > pool:
            raise InvalidParameterError(
                f"n_train + n_val + n_test = {params.n_train} + {params.n_val} + {params.n_test}"
                f" = {total} exceeds the source pool of {pool} images"
            )
        splits: list[SplitPlan] = []
        group_attrs: dict[str, dict[str, Any]] = {}
        for k in params.realisations:
            rng = stream(params.seed, k, "split")
            trainval, test = stratified_partition(
                labels, [params.n_train + params.n_val, params.n_test], rng
            )
            train_pos, val_pos = stratified_partition(
                labels[trainval], [params.n_train, params.n_val], rng
            )
            members = {"train": trainval[train_pos], "val": trainval[val_pos], "test": test}
            group = realisation_group(k)
            group_attrs[group] = {
                "realisation": k,
                "seed_material": json.dumps(seed_material(params.seed, k), sort_keys=True),
            }
            for split in SPLITS:
                index = members[split]
                scales = (
                    stream(params.seed, k, f"scales/{split}")
                    .uniform(params.min_scale, params.max_scale, size=len(index))
                    .astype(np.float32)
                )
                splits.append(
                    SplitPlan(
                        group=f"{group}/{split}",
                        columns={
                            "labels": labels[index].astype(np.int64),
                            "scales": scales,
                            "source_index": index.astype(np.int32),
                        },
                        image_shape=(params.canvas, params.canvas),
                    )
                )
        return Plan(splits=tuple(splits), group_attrs=group_attrs)

    def worker_state(self, source: Any) -> np.ndarray:
        return np.ascontiguousarray(source.images)

    def render_task(
        self, params: MNISTScaleParams, split: SplitPlan, lo: int, hi: int
    ) -> RenderTask:
        return render_block, (
            split.columns["source_index"][lo:hi],
            split.columns["scales"][lo:hi],
            params.canvas,
            params.interpolation,
        )


PRESET = register(MNISTScalePreset())
