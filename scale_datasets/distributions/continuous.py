"""The continuous built-in laws: uniform, loguniform, truncnorm, trunclognorm and cauchy.

Each samples by inverse cdf from `rng.random(n)`; cdf and pdf match scipy's where scipy has the law.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from ..errors import InvalidParameterError
from .base import ScaleLaw, _as_float


def _truncnorm() -> Any:
    """scipy's truncnorm, imported on first use: importing scipy.stats is slow, and every command
    that loads the presets (`list`, `info`, a worker) would pay for it."""
    from scipy.stats import truncnorm

    return truncnorm


class _Interval(ScaleLaw):
    """A law on [lo, hi], 0 < lo < hi, whose parameters are its dataclass fields (positional
    order), each a finite float; `positive` names the one besides lo and hi that must be > 0."""

    lo: float
    hi: float
    positive: ClassVar[str | None] = None

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            object.__setattr__(self, f.name, _as_float(self.name, f.name, getattr(self, f.name)))
        if self.positive is not None and getattr(self, self.positive) <= 0:
            value = getattr(self, self.positive)
            raise InvalidParameterError(
                f"{self.name}: {self.positive} must be > 0 (got {self.positive}={value!r})"
            )
        if self.lo <= 0:
            raise InvalidParameterError(
                f"{self.name}: lo must be > 0, scales live in (0, inf) (got lo={self.lo!r})"
            )
        if self.lo >= self.hi:
            raise InvalidParameterError(
                f"{self.name}: lo must be < hi (got lo={self.lo!r}, hi={self.hi!r})"
            )
        if not self._has_mass():
            raise InvalidParameterError(
                f"{self.name}: [lo, hi] = [{self.lo!r}, {self.hi!r}] holds no probability mass "
                "in floating point"
            )

    def _has_mass(self) -> bool:
        """Whether [lo, hi] holds probability in floating point (checked when made)."""
        return True

    @property
    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    @property
    def support(self) -> tuple[float, float]:
        return (self.lo, self.hi)


@dataclass(frozen=True)
class Uniform(_Interval):
    """Uniform on [lo, hi]."""

    lo: float
    hi: float
    name: ClassVar[str] = "uniform"

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        u = rng.random(n)
        return np.clip(self.lo + (self.hi - self.lo) * u, self.lo, self.hi)

    def cdf(self, x: npt.ArrayLike) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return np.clip((x - self.lo) / (self.hi - self.lo), 0.0, 1.0)

    def pdf(self, x: npt.ArrayLike) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        inside = (x >= self.lo) & (x <= self.hi)
        return np.where(inside, 1.0 / (self.hi - self.lo), 0.0)


@dataclass(frozen=True)
class LogUniform(_Interval):
    """log s uniform on [log lo, log hi] (scipy `loguniform(lo, hi)`)."""

    lo: float
    hi: float
    name: ClassVar[str] = "loguniform"

    def _has_mass(self) -> bool:
        return math.log(self.hi) > math.log(self.lo)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        a, b = math.log(self.lo), math.log(self.hi)
        u = rng.random(n)
        return np.clip(np.exp(a + (b - a) * u), self.lo, self.hi)

    def cdf(self, x: npt.ArrayLike) -> np.ndarray:
        x = np.clip(np.asarray(x, dtype=np.float64), self.lo, self.hi)
        a, b = math.log(self.lo), math.log(self.hi)
        return np.clip((np.log(x) - a) / (b - a), 0.0, 1.0)

    def pdf(self, x: npt.ArrayLike) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        inside = (x >= self.lo) & (x <= self.hi)
        safe = np.where(inside, x, 1.0)
        return np.where(inside, 1.0 / (safe * math.log(self.hi / self.lo)), 0.0)


@dataclass(frozen=True)
class TruncNorm(_Interval):
    """Normal(mean, sd^2) truncated to [lo, hi] (scipy `truncnorm`, a = (lo - mean) / sd)."""

    mean: float
    sd: float
    lo: float
    hi: float
    name: ClassVar[str] = "truncnorm"
    positive: ClassVar[str | None] = "sd"

    def _has_mass(self) -> bool:
        probe = self._ppf(np.array([0.0, 0.5, 1.0]))
        return bool(np.isfinite(probe).all() and self.lo <= probe[1] <= self.hi)

    @property
    def _ab(self) -> tuple[float, float]:
        return ((self.lo - self.mean) / self.sd, (self.hi - self.mean) / self.sd)

    def _ppf(self, u: np.ndarray) -> np.ndarray:
        a, b = self._ab
        return _truncnorm().ppf(u, a, b, loc=self.mean, scale=self.sd)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.clip(self._ppf(rng.random(n)), self.lo, self.hi)

    def cdf(self, x: npt.ArrayLike) -> np.ndarray:
        a, b = self._ab
        x = np.asarray(x, dtype=np.float64)
        return np.asarray(_truncnorm().cdf(x, a, b, loc=self.mean, scale=self.sd), np.float64)

    def pdf(self, x: npt.ArrayLike) -> np.ndarray:
        a, b = self._ab
        x = np.asarray(x, dtype=np.float64)
        return np.asarray(_truncnorm().pdf(x, a, b, loc=self.mean, scale=self.sd), np.float64)


@dataclass(frozen=True)
class TruncLogNorm(_Interval):
    """log s ~ Normal(mu, sigma^2) truncated to [log lo, log hi]."""

    mu: float
    sigma: float
    lo: float
    hi: float
    name: ClassVar[str] = "trunclognorm"
    positive: ClassVar[str | None] = "sigma"

    def _has_mass(self) -> bool:
        log_lo, log_hi = math.log(self.lo), math.log(self.hi)
        if not log_hi > log_lo:
            return False
        probe = self._log_ppf(np.array([0.0, 0.5, 1.0]))
        return bool(np.isfinite(probe).all() and log_lo <= probe[1] <= log_hi)

    @property
    def _ab(self) -> tuple[float, float]:
        return (
            (math.log(self.lo) - self.mu) / self.sigma,
            (math.log(self.hi) - self.mu) / self.sigma,
        )

    def _log_ppf(self, u: np.ndarray) -> np.ndarray:
        a, b = self._ab
        return _truncnorm().ppf(u, a, b, loc=self.mu, scale=self.sigma)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.clip(np.exp(self._log_ppf(rng.random(n))), self.lo, self.hi)

    def cdf(self, x: npt.ArrayLike) -> np.ndarray:
        a, b = self._ab
        x = np.clip(np.asarray(x, dtype=np.float64), self.lo, self.hi)
        return np.asarray(
            _truncnorm().cdf(np.log(x), a, b, loc=self.mu, scale=self.sigma), np.float64
        )

    def pdf(self, x: npt.ArrayLike) -> np.ndarray:
        a, b = self._ab
        x = np.asarray(x, dtype=np.float64)
        inside = (x >= self.lo) & (x <= self.hi)
        safe = np.where(inside, x, self.lo)
        dens = _truncnorm().pdf(np.log(safe), a, b, loc=self.mu, scale=self.sigma) / safe
        return np.where(inside, dens, 0.0)


@dataclass(frozen=True)
class Cauchy(_Interval):
    """Cauchy(loc, scale) truncated to [lo, hi], sampled by inverse cdf on the interval."""

    loc: float
    scale: float
    lo: float
    hi: float
    name: ClassVar[str] = "cauchy"
    positive: ClassVar[str | None] = "scale"

    def _has_mass(self) -> bool:
        a, b = self._angles
        return b > a

    @property
    def _angles(self) -> tuple[float, float]:
        return (
            math.atan((self.lo - self.loc) / self.scale),
            math.atan((self.hi - self.loc) / self.scale),
        )

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        a, b = self._angles
        u = rng.random(n)
        return np.clip(self.loc + self.scale * np.tan(a + (b - a) * u), self.lo, self.hi)

    def cdf(self, x: npt.ArrayLike) -> np.ndarray:
        a, b = self._angles
        x = np.clip(np.asarray(x, dtype=np.float64), self.lo, self.hi)
        return np.clip((np.arctan((x - self.loc) / self.scale) - a) / (b - a), 0.0, 1.0)

    def pdf(self, x: npt.ArrayLike) -> np.ndarray:
        a, b = self._angles
        x = np.asarray(x, dtype=np.float64)
        z = (x - self.loc) / self.scale
        inside = (x >= self.lo) & (x <= self.hi)
        return np.where(inside, 1.0 / (self.scale * (1.0 + z * z) * (b - a)), 0.0)
