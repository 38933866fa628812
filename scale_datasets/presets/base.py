"""What every preset declares, and the registry of presets.

A preset is one module: its params (a `PresetParams` dataclass), the sources it reads, its random
purposes, its plan (every random decision, drawn up front) and the render op that turns a base
sample and its plan value into a sample. Build, storage, the Dataset and the CLI are generic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from ..errors import InvalidParameterError
from ..rng import Streams
from ..sources.common import Source
from ..storage.format import canonical_json, realisation_group
from .params import PresetParams, make_params

Layout = Literal["pixels", "on-access"]
LAYOUTS: tuple[str, ...] = ("pixels", "on-access")


@dataclass(frozen=True)
class SplitPlan:
    """All random decisions for one split of one realisation; small, stored in the file."""

    group: str  # e.g. "realisation_0/train"
    columns: dict[str, np.ndarray]  # labels, source_index and the render op's plan column

    def __len__(self) -> int:
        return len(self.columns["labels"])


@dataclass(frozen=True)
class Plan:
    splits: tuple[SplitPlan, ...]
    group_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class RenderSpec:
    """The render op a file is built with: its name, plan column and parameters."""

    op: str
    column: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return canonical_json({"op": self.op, "column": self.column, "params": self.params})


class Preset:
    """Base of every preset; subclasses set the class attributes and the three methods."""

    name: ClassVar[str]
    version: ClassVar[int]
    summary: ClassVar[str]
    params_type: ClassVar[type[PresetParams]]
    layout: ClassVar[Layout]
    sources: ClassVar[tuple[str, ...]]  # names accepted by `--source`, the default first
    source_dir_help: ClassVar[str]  # what a `--source-dir` folder must hold
    streams: ClassVar[Streams]
    # (mean, std) to normalise with when a file records no statistics of its own.
    normalisation: ClassVar[tuple[Any, Any] | None] = None
    # Python that loads a built file, with {path} for its name (goes into the dataset card).
    loader_example: ClassVar[str] = (
        "from scale_datasets import ScaleDataset\n"
        "train = ScaleDataset('{path}', split='train', realisation=0)"
    )

    @property
    def default_source(self) -> str:
        return self.sources[0]

    def make_params(self, **options: Any) -> PresetParams:
        """The validated params from user options (`realisations=N` means ids 0..N-1)."""
        return make_params(self.params_type, self.name, **options)

    def load_source(
        self,
        source: str | None,
        source_dir: Path | None,
        root: Path | None,
        download: bool,
        params: Any = None,
    ) -> Source:
        """The source pool; ``params`` (the build's, when it has them) for presets whose
        source depends on them."""
        raise NotImplementedError

    def plan(self, params: Any, source: Source) -> Plan:
        raise NotImplementedError

    def render_spec(self, params: Any) -> RenderSpec:
        raise NotImplementedError

    def sample_shape(self, params: Any, source: Source) -> tuple[int, ...]:
        """The stored shape of one rendered sample (layout "pixels" only)."""
        raise NotImplementedError

    def describe(self, params: dict[str, Any]) -> list[str]:
        """Lines that `info` and the dataset card show about a file's params (as recorded: a
        dict, so a file built with a user's scale law describes itself without it)."""
        return []

    def realisation_attrs(self, params: Any, realisation: int) -> dict[str, Any]:
        """What a realisation's group records: its id and how to recreate its streams."""
        material = self.streams.seed_material(params.seed, realisation)
        return {"realisation": realisation, "seed_material": json.dumps(material, sort_keys=True)}

    def check_source_name(self, source: str | None) -> str:
        name = self.default_source if source is None else source
        if name not in self.sources:
            raise InvalidParameterError(
                f"source: {self.name} reads {', '.join(self.sources)}; got {name!r}"
            )
        return name


class MnistLikeSources:
    """Mixin for presets that read the MNIST family (any folder of the four IDX files)."""

    sources: ClassVar[tuple[str, ...]] = ("mnist", "fashion-mnist", "kmnist")
    source_dir_help: ClassVar[str] = "the four MNIST-format IDX files (.gz or not)"

    def load_source(
        self,
        source: str | None,
        source_dir: Path | None,
        root: Path | None,
        download: bool,
        params: Any = None,
    ) -> Source:
        from ..sources import load_mnist_like

        name = self.check_source_name(source)  # type: ignore[attr-defined]
        return load_mnist_like(name, source_dir=source_dir, root=root, download=download)


def check_pool(sizes: list[int], labels: np.ndarray) -> None:
    """Splits of these sizes must fit in the source pool."""
    if sum(sizes) > len(labels):
        raise InvalidParameterError(
            f"n_train + n_val + n_test = {' + '.join(map(str, sizes))} = {sum(sizes)} "
            f"exceeds the source pool of {len(labels)} samples"
        )


def split_plan(
    realisation: int, split: str, labels: np.ndarray, index: np.ndarray, column: str, values: Any
) -> SplitPlan:
    """The stored columns of one split: labels, source_index and the plan column."""
    return SplitPlan(
        group=f"{realisation_group(realisation)}/{split}",
        columns={
            "labels": labels[index].astype(np.int64),
            "source_index": index.astype(np.int32),
            column: values,
        },
    )


_REGISTRY: dict[str, Preset] = {}


def register(preset: Preset) -> Preset:
    _REGISTRY[preset.name] = preset
    return preset


def get_preset(name: str) -> Preset:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InvalidParameterError(
            f"unknown preset {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        ) from None


def find_preset(name: str) -> Preset | None:
    """The preset of that name, or None (files of presets this version lacks)."""
    return _REGISTRY.get(name)


def list_presets() -> list[Preset]:
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]
