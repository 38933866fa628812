"""The continuous built-in laws: uniform, loguniform, truncnorm, trunclognorm and cauchy.

Each samples by inverse cdf from `rng.random(n)`; cdf and pdf match scipy's where scipy has the law.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from scipy import stats

from .base import ScaleLaw, _check_interval, _check_positive, _FieldParams, _floats, _no_mass


@dataclass(frozen=True)
class Uniform(_FieldParams, ScaleLaw):
    """Uniform on [lo, hi]."""

    lo: float
    hi: float
    name: ClassVar[str] = "uniform"

    def __post_init__(self) -> None:
        _floats(self, "lo", "hi")
        _check_interval(self.name, self.lo, self.hi)

    @property
    def support(self) -> tuple[float, float]:
        return (self.lo, self.hi)

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
class LogUniform(_FieldParams, ScaleLaw):
    """log s uniform on [log lo, log hi] (scipy `loguniform(lo, hi)`)."""

    lo: float
    hi: float
    name: ClassVar[str] = "loguniform"

    def __post_init__(self) -> None:
        _floats(self, "lo", "hi")
        _check_interval(self.name, self.lo, self.hi)
        if not math.log(self.hi) > math.log(self.lo):
            raise _no_mass(self.name, self.lo, self.hi)

    @property
    def support(self) -> tuple[float, float]:
        return (self.lo, self.hi)

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
class TruncNorm(_FieldParams, ScaleLaw):
    """Normal(mean, sd^2) truncated to [lo, hi] (scipy `truncnorm`, a = (lo - mean) / sd)."""

    mean: float
    sd: float
    lo: float
    hi: float
    name: ClassVar[str] = "truncnorm"

    def __post_init__(self) -> None:
        _floats(self, "mean", "sd", "lo", "hi")
        _check_positive(self.name, "sd", self.sd)
        _check_interval(self.name, self.lo, self.hi)
        probe = self._ppf(np.array([0.0, 0.5, 1.0]))
        if not (np.isfinite(probe).all() and self.lo <= probe[1] <= self.hi):
            raise _no_mass(self.name, self.lo, self.hi)

    @property
    def _ab(self) -> tuple[float, float]:
        return ((self.lo - self.mean) / self.sd, (self.hi - self.mean) / self.sd)

    def _ppf(self, u: np.ndarray) -> np.ndarray:
        a, b = self._ab
        return stats.truncnorm.ppf(u, a, b, loc=self.mean, scale=self.sd)

    @property
    def support(self) -> tuple[float, float]:
        return (self.lo, self.hi)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.clip(self._ppf(rng.random(n)), self.lo, self.hi)

    def cdf(self, x: npt.ArrayLike) -> np.ndarray:
        a, b = self._ab
        x = np.asarray(x, dtype=np.float64)
        return np.asarray(stats.truncnorm.cdf(x, a, b, loc=self.mean, scale=self.sd), np.float64)

    def pdf(self, x: npt.ArrayLike) -> np.ndarray:
        a, b = self._ab
        x = np.asarray(x, dtype=np.float64)
        return np.asarray(stats.truncnorm.pdf(x, a, b, loc=self.mean, scale=self.sd), np.float64)


@dataclass(frozen=True)
class TruncLogNorm(_FieldParams, ScaleLaw):
    """log s ~ Normal(mu, sigma^2) truncated to [log lo, log hi]."""

    mu: float
    sigma: float
    lo: float
    hi: float
    name: ClassVar[str] = "trunclognorm"

    def __post_init__(self) -> None:
        _floats(self, "mu", "sigma", "lo", "hi")
        _check_positive(self.name, "sigma", self.sigma)
        _check_interval(self.name, self.lo, self.hi)
        if not math.log(self.hi) > math.log(self.lo):
            raise _no_mass(self.name, self.lo, self.hi)
        probe = self._log_ppf(np.array([0.0, 0.5, 1.0]))
        if not (np.isfinite(probe).all() and math.log(self.lo) <= probe[1] <= math.log(self.hi)):
            raise _no_mass(self.name, self.lo, self.hi)

    @property
    def _ab(self) -> tuple[float, float]:
        return (
            (math.log(self.lo) - self.mu) / self.sigma,
            (math.log(self.hi) - self.mu) / self.sigma,
        )

    def _log_ppf(self, u: np.ndarray) -> np.ndarray:
        a, b = self._ab
        return stats.truncnorm.ppf(u, a, b, loc=self.mu, scale=self.sigma)

    @property
    def support(self) -> tuple[float, float]:
        return (self.lo, self.hi)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.clip(np.exp(self._log_ppf(rng.random(n))), self.lo, self.hi)

    def cdf(self, x: npt.ArrayLike) -> np.ndarray:
        a, b = self._ab
        x = np.clip(np.asarray(x, dtype=np.float64), self.lo, self.hi)
        return np.asarray(
            stats.truncnorm.cdf(np.log(x), a, b, loc=self.mu, scale=self.sigma), np.float64
        )

    def pdf(self, x: npt.ArrayLike) -> np.ndarray:
        a, b = self._ab
        x = np.asarray(x, dtype=np.float64)
        inside = (x >= self.lo) & (x <= self.hi)
        safe = np.where(inside, x, self.lo)
        dens = stats.truncnorm.pdf(np.log(safe), a, b, loc=self.mu, scale=self.sigma) / safe
        return np.where(inside, dens, 0.0)


@dataclass(frozen=True)
class Cauchy(_FieldParams, ScaleLaw):
    """Cauchy(loc, scale) truncated to [lo, hi], sampled by inverse cdf on the interval."""

    loc: float
    scale: float
    lo: float
    hi: float
    name: ClassVar[str] = "cauchy"

    def __post_init__(self) -> None:
        _floats(self, "loc", "scale", "lo", "hi")
        _check_positive(self.name, "scale", self.scale)
        _check_interval(self.name, self.lo, self.hi)
        a, b = self._angles
        if not b > a:
            raise _no_mass(self.name, self.lo, self.hi)

    @property
    def _angles(self) -> tuple[float, float]:
        return (
            math.atan((self.lo - self.loc) / self.scale),
            math.atan((self.hi - self.loc) / self.scale),
        )

    @property
    def support(self) -> tuple[float, float]:
        return (self.lo, self.hi)

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
