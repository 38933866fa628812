"""Scale laws: the distributions a scale factor per sample is drawn from, and their spec strings.

A law is written as a spec string, parsed by `parse_distribution` and stored in a file as its
canonical string (`law.canonical`), which parses back to an equal law:

    loguniform(1, 8)                          -> loguniform(1.0, 8.0)
    truncnorm(mean=2, sd=0.5, lo=1, hi=4)     -> truncnorm(2.0, 0.5, 1.0, 4.0)
    mixture(0.3 * uniform(1, 2), 0.7 * trunclognorm(0.7, 0.4, 1, 8))

Grammar (whitespace between tokens is ignored; a small recursive-descent parser, never `eval`):

    spec     := law
    law      := NAME "(" [ args ] ")"          | "mixture" "(" term { "," term } ")"
    args     := arg { "," arg }                  (positional arguments before keyword ones)
    arg      := number | NAME "=" number
    term     := number "*" law                   (weights > 0, summing to 1 within 1e-9)
    number   := [ "+" | "-" ] digits [ "." digits ] [ ("e" | "E") [ "+" | "-" ] digits ]

Every number is a Python float (no expressions, no inf or nan). Canonical strings write every
parameter positionally (keyword-only parameters of registered laws as `name=value`) with
`repr(float)`, which round-trips exactly.

Every law draws only from the `numpy.random.Generator` it is given, so draws are a function of the
generator's state. Built-in laws sample by inverse cdf from `rng.random(n)` (the discrete and
mixture laws by counts and shuffles, see their classes); their cdf and pdf match scipy's where
scipy has the law. A law without a cdf or pdf (the discrete law has a step cdf but no pdf; a law
registered as a function has neither) says so in `has_cdf` / `has_pdf`, and calling the missing
one raises `InvalidParameterError`.

Users add laws with `register_distribution("name")` on a class (constructed with the spec's
numbers; it needs `sample(rng, n)` and may have `cdf(x)`, `pdf(x)` and `support`) or on a function
`f(rng, n, *params) -> array` (no cdf or pdf, support (0, inf)).
"""

from __future__ import annotations

import inspect
import logging
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt
from scipy import stats

from .errors import InvalidParameterError

log = logging.getLogger(__name__)

MIXTURE = "mixture"
WEIGHT_TOLERANCE = 1e-9  # |sum of mixture weights - 1| allowed

T = TypeVar("T")

__all__ = [
    "WEIGHT_TOLERANCE",
    "Cauchy",
    "Discrete",
    "LogUniform",
    "Mixture",
    "RegisteredLaw",
    "ScaleLaw",
    "TruncLogNorm",
    "TruncNorm",
    "Uniform",
    "list_distributions",
    "parse_distribution",
    "register_distribution",
]


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


def _floats(law: ScaleLaw, *names: str) -> None:
    """Convert the named fields of a frozen dataclass law to finite floats, in place."""
    for name in names:
        object.__setattr__(law, name, _as_float(law.name, name, getattr(law, name)))


def _check_interval(law: str, lo: float, hi: float) -> None:
    if lo <= 0:
        raise InvalidParameterError(
            f"{law}: lo must be > 0, scales live in (0, inf) (got lo={lo!r})"
        )
    if lo >= hi:
        raise InvalidParameterError(f"{law}: lo must be < hi (got lo={lo!r}, hi={hi!r})")


def _check_positive(law: str, name: str, value: float) -> None:
    if value <= 0:
        raise InvalidParameterError(f"{law}: {name} must be > 0 (got {name}={value!r})")


def _no_mass(law: str, lo: float, hi: float) -> InvalidParameterError:
    return InvalidParameterError(
        f"{law}: [lo, hi] = [{lo!r}, {hi!r}] holds no probability mass in floating point"
    )


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


class _FieldParams:
    """`params` from the dataclass fields, in declaration (= positional) order."""

    @property
    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]


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


@dataclass(frozen=True)
class Discrete(ScaleLaw):
    """Equal counts of each listed value, shuffled (Basting et al.).

    n draws hold n // k copies of each of the k values; the n % k values that get one more are
    drawn without replacement (`rng.choice`), then the whole array is permuted
    (`rng.permutation`). The cdf is the step function k_x / k (k_x values <= x); there is no pdf.
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

    def counts(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """How many of n draws take each value (as `sample` uses them)."""
        k = len(self.values)
        counts = np.full(k, n // k, dtype=np.int64)
        counts[rng.choice(k, size=n % k, replace=False)] += 1
        return counts

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        ordered = np.repeat(np.asarray(self.values, dtype=np.float64), self.counts(rng, n))
        return rng.permutation(ordered)

    def cdf(self, x: npt.ArrayLike) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        steps = np.searchsorted(np.sort(np.asarray(self.values)), x, side="right")
        return steps / len(self.values)

    def pdf(self, x: npt.ArrayLike) -> np.ndarray:
        raise InvalidParameterError(
            f"law {self.canonical!r} has no pdf: it is discrete (its cdf is a step function)"
        )


@dataclass(frozen=True)
class Mixture(ScaleLaw):
    """Law i with probability weights[i].

    The component of each of the n draws is drawn first (`rng.choice(k, n, p=weights)`), then
    each component in turn samples its own share from the same `rng` into its positions. cdf and
    pdf are the weighted sums (a pdf only if every component has one); the support is the hull of
    the components' supports.
    """

    weights: tuple[float, ...]
    components: tuple[ScaleLaw, ...]
    name: ClassVar[str] = MIXTURE

    def __post_init__(self) -> None:
        weights = tuple(_as_float(self.name, "weight", w) for w in self.weights)
        components = tuple(self.components)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "components", components)
        if not components:
            raise InvalidParameterError(f"{self.name}: needs at least one 'w * law' term")
        if len(weights) != len(components):
            raise InvalidParameterError(
                f"{self.name}: {len(weights)} weights for {len(components)} components"
            )
        for c in components:
            if not isinstance(c, ScaleLaw):
                raise InvalidParameterError(f"{self.name}: component {c!r} is not a ScaleLaw")
        bad = [w for w in weights if w <= 0]
        if bad:
            raise InvalidParameterError(f"{self.name}: weights must be > 0 (got {bad[0]!r})")
        total = math.fsum(weights)
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            raise InvalidParameterError(
                f"{self.name}: weights must sum to 1 within 1e-9 (they sum to {total!r})"
            )

    @property
    def probabilities(self) -> np.ndarray:
        """The weights normalised to sum to 1 exactly (as far as float64 goes)."""
        w = np.asarray(self.weights, dtype=np.float64)
        return w / w.sum()

    @property
    def params(self) -> dict[str, Any]:
        return {
            "weights": list(self.weights),
            "components": [c.canonical for c in self.components],
        }

    def _canonical_args(self) -> list[str]:
        pairs = zip(self.weights, self.components, strict=True)
        return [f"{_fmt(w)} * {c.canonical}" for w, c in pairs]

    @property
    def support(self) -> tuple[float, float]:
        supports = [c.support for c in self.components]
        return (min(s[0] for s in supports), max(s[1] for s in supports))

    @property
    def has_cdf(self) -> bool:
        return all(c.has_cdf for c in self.components)

    @property
    def has_pdf(self) -> bool:
        return all(c.has_pdf for c in self.components)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        which = rng.choice(len(self.components), size=n, p=self.probabilities)
        out = np.empty(n, dtype=np.float64)
        for i, component in enumerate(self.components):
            at = np.flatnonzero(which == i)
            out[at] = component.sample(rng, at.size)
        return out

    def cdf(self, x: npt.ArrayLike) -> np.ndarray:
        if not self.has_cdf:
            return super().cdf(x)
        x = np.asarray(x, dtype=np.float64)
        return sum(
            (p * c.cdf(x) for p, c in zip(self.probabilities, self.components, strict=True)),
            np.zeros_like(x),
        )

    def pdf(self, x: npt.ArrayLike) -> np.ndarray:
        if not self.has_pdf:
            return super().pdf(x)
        x = np.asarray(x, dtype=np.float64)
        return sum(
            (p * c.pdf(x) for p, c in zip(self.probabilities, self.components, strict=True)),
            np.zeros_like(x),
        )


# ----------------------------------------------------------------------------------------------
# Laws registered by users
# ----------------------------------------------------------------------------------------------

_POS, _VAR, _KW = "positional", "variadic", "keyword"


class _FunctionImpl:
    """A registered function `f(rng, n, *params)` bound to its parameters."""

    def __init__(self, func: Callable[..., Any], args: tuple[float, ...], kwargs: dict) -> None:
        self.func, self.args, self.kwargs = func, args, kwargs

    def sample(self, rng: np.random.Generator, n: int) -> Any:
        return self.func(rng, n, *self.args, **self.kwargs)


@dataclass(frozen=True)
class RegisteredLaw(ScaleLaw):
    """A law registered with `register_distribution`, bound to its parameters.

    `arguments` holds (parameter, kind, value) in signature order; kind is "positional",
    "variadic" (value is a tuple) or "keyword" (keyword-only). Laws compare by name and
    arguments, not by the implementation object.
    """

    law_name: str
    arguments: tuple[tuple[str, str, Any], ...]
    impl: Any = field(compare=False, repr=False)

    @property  # type: ignore[override]
    def name(self) -> str:
        return self.law_name

    @property
    def params(self) -> dict[str, Any]:
        return {p: (list(v) if kind == _VAR else v) for p, kind, v in self.arguments}

    def _canonical_args(self) -> list[str]:
        out: list[str] = []
        for p, kind, v in self.arguments:
            if kind == _VAR:
                out += [_fmt(x) for x in v]
            elif kind == _KW:
                out.append(f"{p}={_fmt(v)}")
            else:
                out.append(_fmt(v))
        return out

    @property
    def support(self) -> tuple[float, float]:
        declared = getattr(self.impl, "support", None)
        if declared is None:
            return (0.0, math.inf)
        if callable(declared):
            declared = declared()
        return _check_support(self.law_name, declared)

    @property
    def has_cdf(self) -> bool:
        return callable(getattr(self.impl, "cdf", None))

    @property
    def has_pdf(self) -> bool:
        return callable(getattr(self.impl, "pdf", None))

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.asarray(self.impl.sample(rng, n), dtype=np.float64)

    def cdf(self, x: npt.ArrayLike) -> np.ndarray:
        if not self.has_cdf:
            return super().cdf(x)
        return np.asarray(self.impl.cdf(np.asarray(x, dtype=np.float64)), dtype=np.float64)

    def pdf(self, x: npt.ArrayLike) -> np.ndarray:
        if not self.has_pdf:
            return super().pdf(x)
        return np.asarray(self.impl.pdf(np.asarray(x, dtype=np.float64)), dtype=np.float64)


def _check_support(law: str, declared: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in declared)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"{law}: support must be a pair (lo, hi), got {declared!r}"
        ) from None
    if not (0.0 <= lo < hi) or math.isnan(hi):
        raise InvalidParameterError(
            f"{law}: support must satisfy 0 <= lo < hi <= inf, got ({lo!r}, {hi!r})"
        )
    return (lo, hi)


# ----------------------------------------------------------------------------------------------
# The registry
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    name: str
    signature: inspect.Signature  # what the spec's numbers bind to
    make: Callable[[inspect.BoundArguments], ScaleLaw]
    parameters: tuple[str, ...]  # for display: ("lo", "hi"), ("v1", "v2", "...")
    formula: str
    support: str
    builtin: bool


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_REGISTRY: dict[str, _Entry] = {}


def _builtin(cls: type[ScaleLaw], parameters: tuple[str, ...], formula: str, support: str) -> None:
    if cls is Discrete:
        signature = inspect.Signature(
            [inspect.Parameter("values", inspect.Parameter.VAR_POSITIONAL)]
        )

        def make(bound: inspect.BoundArguments) -> ScaleLaw:
            return Discrete(tuple(bound.args))
    else:
        signature = inspect.signature(cls)

        def make(bound: inspect.BoundArguments) -> ScaleLaw:
            return cls(*bound.args, **bound.kwargs)

    _REGISTRY[cls.name] = _Entry(cls.name, signature, make, parameters, formula, support, True)


_builtin(
    Uniform,
    ("lo", "hi"),
    "p(s) = 1 / (hi - lo) on [lo, hi]",
    "[lo, hi]; 0 < lo < hi",
)
_builtin(
    LogUniform,
    ("lo", "hi"),
    "p(s) = 1 / (s ln(hi / lo)) on [lo, hi]: log s uniform (scipy loguniform(lo, hi))",
    "[lo, hi]; 0 < lo < hi",
)
_builtin(
    TruncNorm,
    ("mean", "sd", "lo", "hi"),
    "s ~ Normal(mean, sd^2) truncated to [lo, hi] "
    "(scipy truncnorm, a = (lo - mean) / sd, b = (hi - mean) / sd)",
    "[lo, hi]; 0 < lo < hi, sd > 0",
)
_builtin(
    TruncLogNorm,
    ("mu", "sigma", "lo", "hi"),
    "log s ~ Normal(mu, sigma^2) truncated to [log lo, log hi]",
    "[lo, hi]; 0 < lo < hi, sigma > 0",
)
_builtin(
    Cauchy,
    ("loc", "scale", "lo", "hi"),
    "s ~ Cauchy(loc, scale) truncated to [lo, hi]: p(s) ~ 1 / (1 + ((s - loc) / scale)^2)",
    "[lo, hi]; 0 < lo < hi, scale > 0",
)
_builtin(
    Discrete,
    ("v1", "v2", "..."),
    "equal counts of each listed value (differing by at most 1), shuffled; step cdf, no pdf",
    "{v1, v2, ...}; every v > 0, distinct, at least one",
)
_REGISTRY[MIXTURE] = _Entry(
    MIXTURE,
    inspect.Signature(),
    lambda bound: None,  # type: ignore[arg-type,return-value]  # the parser builds mixtures
    ("w1 * law1", "w2 * law2", "..."),
    "law i with probability w_i (components drawn multinomially, then each law draws its "
    "share); cdf and pdf are the weighted sums",
    "hull of the components' supports; every w > 0, sum of w = 1 within 1e-9",
    True,
)


def _user_signature(obj: Any, name: str) -> tuple[inspect.Signature, bool]:
    """The signature the spec's numbers bind to, and whether obj is a class."""
    is_class = isinstance(obj, type)
    if is_class:
        if not callable(getattr(obj, "sample", None)):
            raise InvalidParameterError(
                f"register_distribution({name!r}): class {obj.__name__} has no sample(rng, n)"
            )
        signature = inspect.signature(obj)
    elif callable(obj):
        full = inspect.signature(obj)
        params = list(full.parameters.values())
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        if len(params) < 2 or any(p.kind not in positional for p in params[:2]):
            raise InvalidParameterError(
                f"register_distribution({name!r}): a function must take (rng, n, *params)"
            )
        signature = full.replace(parameters=params[2:])
    else:
        raise InvalidParameterError(
            f"register_distribution({name!r}): expected a class or a function, got {obj!r}"
        )
    for p in signature.parameters.values():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            raise InvalidParameterError(
                f"register_distribution({name!r}): **{p.name} is not supported "
                "(a canonical string lists every parameter)"
            )
        if p.default is not inspect.Parameter.empty:
            _as_float(name, p.name, p.default)
    return signature, is_class


def _display_parameters(signature: inspect.Signature) -> tuple[str, ...]:
    out: list[str] = []
    for p in signature.parameters.values():
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            out.append(f"{p.name}...")
        elif p.kind is inspect.Parameter.KEYWORD_ONLY:
            out.append(f"{p.name}=")
        else:
            out.append(p.name)
    return tuple(out)


def register_distribution(
    name: str, *, replace: bool = False, formula: str | None = None, support: str | None = None
) -> Callable[[T], T]:
    """Register a user law under `name`; use as a decorator on a class or a function.

    - A class is constructed with the spec's numbers (all floats, positional and keyword as
      written; defaults allowed) and must have `sample(rng, n)`; it may have `cdf(x)`, `pdf(x)`
      and `support` (a pair, or a method returning one; default (0, inf)).
    - A function `f(rng, n, *params) -> array` becomes a law with the parameters after `n`; it
      has no cdf or pdf and support (0, inf).

    Draws are checked on every `sample` call (float64, shape (n,), finite, > 0, in the support).
    Re-registering a name raises unless `replace=True`; built-in names (and `mixture`) cannot be
    replaced. `formula` and `support` are the texts `list_distributions` shows (default: the first
    docstring line, and the support rule above). The decorated object is returned unchanged.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidParameterError(
            f"register_distribution({name!r}): a name is letters, digits and '_', "
            "not starting with a digit"
        )
    existing = _REGISTRY.get(name)
    if existing is not None and existing.builtin:
        raise InvalidParameterError(
            f"register_distribution({name!r}): {name!r} is a built-in law and cannot be replaced"
        )
    if existing is not None and not replace:
        raise InvalidParameterError(
            f"register_distribution({name!r}): {name!r} is already registered "
            "(pass replace=True to replace it)"
        )

    def decorate(obj: T) -> T:
        signature, is_class = _user_signature(obj, name)

        def make(bound: inspect.BoundArguments) -> ScaleLaw:
            bound.apply_defaults()
            arguments: list[tuple[str, str, Any]] = []
            args: list[float] = []
            kwargs: dict[str, float] = {}
            for p in signature.parameters.values():
                value = bound.arguments[p.name]
                if p.kind is inspect.Parameter.VAR_POSITIONAL:
                    values = tuple(_as_float(name, p.name, v) for v in value)
                    arguments.append((p.name, _VAR, values))
                    args += values
                elif p.kind is inspect.Parameter.KEYWORD_ONLY:
                    kwargs[p.name] = _as_float(name, p.name, value)
                    arguments.append((p.name, _KW, kwargs[p.name]))
                else:
                    args.append(_as_float(name, p.name, value))
                    arguments.append((p.name, _POS, args[-1]))
            impl = obj(*args, **kwargs) if is_class else _FunctionImpl(obj, tuple(args), kwargs)
            law = RegisteredLaw(name, tuple(arguments), impl)
            _ = law.support  # a bad declared support fails here, not at the first draw
            return law

        doc = inspect.getdoc(obj)
        first_line = doc.strip().splitlines()[0] if doc else "user-registered law"
        if support is not None:
            support_text = support
        elif is_class and getattr(obj, "support", None) is not None:
            support_text = "declared by the law's support"
        else:
            support_text = "(0, inf)"
        _REGISTRY[name] = _Entry(
            name,
            signature,
            make,
            _display_parameters(signature),
            formula if formula is not None else first_line,
            support_text,
            False,
        )
        log.debug("registered scale law %r (%s)", name, "class" if is_class else "function")
        return obj

    return decorate


def list_distributions() -> list[dict[str, Any]]:
    """Every law a spec can name, sorted by name: name, parameters, formula, support, builtin."""
    return [
        {
            "name": e.name,
            "parameters": list(e.parameters),
            "formula": e.formula,
            "support": e.support,
            "builtin": e.builtin,
        }
        for e in sorted(_REGISTRY.values(), key=lambda e: e.name)
    ]


# ----------------------------------------------------------------------------------------------
# The spec parser
# ----------------------------------------------------------------------------------------------


class _SpecError(Exception):
    """A problem in a spec string (turned into InvalidParameterError naming the spec)."""


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "name", one of "(),=*+-", or "end"
    text: str
    column: int  # 1-based

    def describe(self) -> str:
        return "end of spec" if self.kind == "end" else f"{self.text!r}"


_TOKEN = re.compile(
    r"(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>[(),=*+-])"
)


def _tokenize(spec: str) -> Iterator[_Token]:
    i = 0
    while i < len(spec):
        if spec[i].isspace():
            i += 1
            continue
        m = _TOKEN.match(spec, i)
        if m is None:
            raise _SpecError(f"unexpected character {spec[i]!r} at column {i + 1}")
        kind = m.lastgroup or ""
        yield _Token(m.group() if kind == "op" else kind, m.group(), i + 1)
        i = m.end()
    yield _Token("end", "", len(spec) + 1)


class _Parser:
    def __init__(self, spec: str) -> None:
        self.tokens = list(_tokenize(spec))
        self.i = 0

    @property
    def next(self) -> _Token:
        return self.tokens[self.i]

    def take(self, kind: str, what: str) -> _Token:
        token = self.next
        if token.kind != kind:
            raise _SpecError(f"expected {what} at column {token.column}, found {token.describe()}")
        self.i += 1
        return token

    def spec(self) -> ScaleLaw:
        law = self.law()
        if self.next.kind != "end":
            raise _SpecError(
                f"unexpected {self.next.describe()} at column {self.next.column} after the law"
            )
        return law

    def number(self, what: str) -> float:
        sign = 1.0
        if self.next.kind in ("+", "-"):
            sign = -1.0 if self.take(self.next.kind, "a sign").kind == "-" else 1.0
        token = self.take("number", what)
        value = sign * float(token.text)
        if not math.isfinite(value):
            raise _SpecError(f"number {token.text!r} at column {token.column} is not finite")
        return value

    def law(self) -> ScaleLaw:
        name = self.take("name", "a law name")
        entry = _REGISTRY.get(name.text)
        if entry is None:
            known = ", ".join(sorted(_REGISTRY))
            raise _SpecError(f"unknown law {name.text!r} (known: {known})")
        self.take("(", f"'(' after {name.text!r}")
        if entry.name == MIXTURE:
            return self.mixture()
        args, kwargs = self.arguments(name.text)
        keywords = {
            p.name
            for p in entry.signature.parameters.values()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        }
        unknown = sorted(set(kwargs) - keywords)
        if unknown:
            raise _SpecError(
                f"{entry.name}({', '.join(entry.parameters)}) has no parameter {unknown[0]!r}"
            )
        try:
            bound = entry.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise _SpecError(
                f"wrong arguments for {entry.name}({', '.join(entry.parameters)}): {exc}"
            ) from None
        return entry.make(bound)

    def arguments(self, law: str) -> tuple[list[float], dict[str, float]]:
        args: list[float] = []
        kwargs: dict[str, float] = {}
        if self.next.kind == ")":
            self.i += 1
            return args, kwargs
        while True:
            if self.next.kind == "name" and self.tokens[self.i + 1].kind == "=":
                key = self.take("name", "a parameter name")
                self.take("=", f"'=' after {key.text!r}")
                if key.text in kwargs:
                    raise _SpecError(f"{law}: {key.text!r} given twice (column {key.column})")
                kwargs[key.text] = self.number(f"a number for {key.text!r}")
            else:
                column = self.next.column
                value = self.number("a number or name=number")
                if kwargs:
                    raise _SpecError(
                        f"{law}: positional argument after keyword arguments at column {column}"
                    )
                args.append(value)
            separator = self.next
            if separator.kind == ")":
                self.i += 1
                return args, kwargs
            self.take(",", "',' or ')'")

    def mixture(self) -> ScaleLaw:
        weights: list[float] = []
        components: list[ScaleLaw] = []
        if self.next.kind == ")":
            raise _SpecError(f"{MIXTURE} needs at least one 'w * law' term")
        while True:
            weights.append(self.number("a weight (mixture terms are 'w * law')"))
            self.take("*", "'*' after the weight (mixture terms are 'w * law')")
            components.append(self.law())
            if self.next.kind == ")":
                self.i += 1
                return Mixture(tuple(weights), tuple(components))
            self.take(",", "',' or ')'")


def parse_distribution(spec: str) -> ScaleLaw:
    """The law a spec string names (see the module docstring for the grammar).

    Raises InvalidParameterError with one line `distribution '<spec>': <problem>` for an unknown
    law, wrong arguments, invalid parameters or malformed syntax (with the column).
    """
    if not isinstance(spec, str):
        raise InvalidParameterError(f"distribution spec must be a string, got {spec!r}")
    try:
        return _Parser(spec).spec()
    except (_SpecError, ValueError) as exc:  # InvalidParameterError is a ValueError
        problem = " ".join(str(exc).split()) or type(exc).__name__
        raise InvalidParameterError(f"distribution {spec!r}: {problem}") from None
