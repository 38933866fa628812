"""What every preset provides: params -> plan -> render tasks, and the registry of presets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import InvalidParameterError


@dataclass(frozen=True)
class SplitPlan:
    """All random decisions for one split of one realisation; small, stored in the file."""

    group: str  # e.g. "realisation_0/train"
    columns: dict[str, np.ndarray]  # per-sample columns stored as they are (labels, scales, ...)
    image_shape: tuple[int, ...]
    image_dtype: str = "uint8"

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))


@dataclass(frozen=True)
class Plan:
    splits: tuple[SplitPlan, ...]
    group_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)


# A render task is a picklable top-level function and its (small) arguments; running it gives
# the pixel rows of one block of one split.
RenderTask = tuple[Callable[..., np.ndarray], tuple[Any, ...]]


class Preset(Protocol):
    """A named, versioned protocol. Its source object must offer `.name` and `.describe()`."""

    name: str
    version: int
    summary: str
    params_type: type  # the frozen params dataclass make_params returns

    def make_params(self, **options: Any) -> Any:
        """The validated, frozen params dataclass (with `to_json()`) from user options."""
        ...

    def load_source(
        self, source: str, source_dir: Path | None, root: Path | None, download: bool
    ) -> Any: ...

    def plan(self, params: Any, source: Any) -> Plan: ...

    def worker_state(self, source: Any) -> Any:
        """Big read-only data every worker needs (sent once per worker process)."""
        ...

    def render_task(self, params: Any, split: SplitPlan, lo: int, hi: int) -> RenderTask: ...


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


def list_presets() -> list[Preset]:
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]
