"""The discrete built-in law: equal counts of each listed value, shuffled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from ..errors import InvalidParameterError
from ..splits import equal_groups
from .base import ScaleLaw, _as_float, _fmt


@dataclass(frozen=True)
class Discrete(ScaleLaw):
    """Equal counts of each listed value, shuffled (Basting et al.).

    n draws hold n // k copies of each of the k values and the n % k values that get one more are
    drawn, then the whole array is permuted: `splits.equal_groups`, as multi-resolution presets
    assign their resolutions. The cdf is the step function k_x / k (k_x values <= x); there is no
    pdf.
    """

    values: tuple[float, ...]
    name: ClassVar[str] = "discrete"

    def __post_init__(self) -> None:
        if not isinstance(self.values, (tuple, list)):
            raise InvalidParameterError(f"{self.name}: values must be a tuple of numbers")
        values = tuple(_as_float(self.name, "value", v) for v in self.values)
        object.__setattr__(self, "values", values)
        if not values:
            raise InvalidParameterError(f"{self.name}: needs at least one value")
        bad = [v for v in values if v <= 0]
        if bad:
            raise InvalidParameterError(
                f"{self.name}: values must be > 0, scales live in (0, inf) (got {bad[0]!r})"
            )
        if len(set(values)) != len(values):
            dup = next(v for v in values if values.count(v) > 1)
            raise InvalidParameterError(f"{self.name}: values must be distinct ({dup!r} repeats)")

    @property
    def params(self) -> dict[str, Any]:
        return {"values": list(self.values)}

    def _canonical_args(self) -> list[str]:
        return [_fmt(v) for v in self.values]

    @property
    def support(self) -> tuple[float, float]:
        return (min(self.values), max(self.values))

    @property
    def has_pdf(self) -> bool:
        return False

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return equal_groups(n, np.asarray(self.values, dtype=np.float64), rng)

    def cdf(self, x: npt.ArrayLike) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        steps = np.searchsorted(np.sort(np.asarray(self.values)), x, side="right")
        return steps / len(self.values)

    def pdf(self, x: npt.ArrayLike) -> np.ndarray:
        raise InvalidParameterError(
            f"law {self.canonical!r} has no pdf: it is discrete (its cdf is a step function)"
        )
