"""The `ScaleLaw` base class, and the number check and formatting every law shares."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from ..errors import InvalidParameterError


def _fmt(x: float) -> str:
    """A number as canonical strings write it: repr of the float (exact round trip)."""
    return repr(float(x))


def _as_float(law: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidParameterError(f"{law}: {name} must be a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise InvalidParameterError(f"{law}: {name} must be finite, got {x!r}")
    return x


class ScaleLaw(ABC):
    """A law of positive scale factors.

    Subclasses implement `_draw(rng, n)`, `support`, `params` and, where the law has them, `cdf`
    and `pdf`; `sample` checks the arguments and the draws. Built-in laws are frozen dataclasses,
    so laws compare and hash by their parameters.
    """

    name: ClassVar[str]

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` draws as float64, every one > 0 and inside `support`, from `rng` alone."""
        if not isinstance(rng, np.random.Generator):
            raise InvalidParameterError(
                f"law {self.canonical!r}: rng must be a numpy.random.Generator, got "
                f"{type(rng).__name__}"
            )
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise InvalidParameterError(
                f"law {self.canonical!r}: n must be an integer >= 0, got {n!r}"
            )
        draws = np.asarray(self._draw(rng, int(n)), dtype=np.float64)
        if draws.shape != (n,):
            raise InvalidParameterError(
                f"law {self.canonical!r}: sample(rng, {n}) gave shape {draws.shape}, not ({n},)"
            )
        lo, hi = self.support
        bad = ~(np.isfinite(draws) & (draws > 0) & (draws >= lo) & (draws <= hi))
        if bad.any():
            raise InvalidParameterError(
                f"law {self.canonical!r}: drew {int(bad.sum())} of {n} values outside its "
                f"support [{lo!r}, {hi!r}] or not finite and > 0 (first: {draws[bad][0]!r})"
            )
        return draws

    @abstractmethod
    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """The raw draws (checked by `sample`)."""

    @property
    def has_cdf(self) -> bool:
        """Whether `cdf` is defined."""
        return True

    @property
    def has_pdf(self) -> bool:
        """Whether `pdf` is defined (False for laws with atoms or an unknown density)."""
        return True

    def cdf(self, x: npt.ArrayLike) -> np.ndarray:
        """P(S <= x) elementwise, float64; raises InvalidParameterError where there is none."""
        raise InvalidParameterError(f"law {self.canonical!r} has no cdf")

    def pdf(self, x: npt.ArrayLike) -> np.ndarray:
        """The density elementwise, float64; raises InvalidParameterError where there is none."""
        raise InvalidParameterError(f"law {self.canonical!r} has no pdf")

    @property
    @abstractmethod
    def support(self) -> tuple[float, float]:
        """(lo, hi) with 0 <= lo < hi <= inf: every draw s has lo <= s <= hi and s > 0."""

    @property
    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The parameters by name (JSON-ready: floats, lists of floats, strings)."""

    def _canonical_args(self) -> list[str]:
        return [_fmt(v) for v in self.params.values()]

    @property
    def canonical(self) -> str:
        """The canonical spec string: `parse_distribution(law.canonical) == law`."""
        return f"{self.name}({', '.join(self._canonical_args())})"

    def __str__(self) -> str:
        return self.canonical
