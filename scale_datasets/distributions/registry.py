"""The registry of scale laws: the built-in table, `register_distribution` for user laws (and
`RegisteredLaw`, which wraps them) and `list_distributions`.

Users add laws with `register_distribution("name")` on a class (constructed with the spec's
numbers; it needs `sample(rng, n)` and may have `cdf(x)`, `pdf(x)` and `support`) or on a function
`f(rng, n, *params) -> array` (no cdf or pdf, support (0, inf)).
"""

from __future__ import annotations

import inspect
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from ..errors import InvalidParameterError
from .base import ScaleLaw, _as_float, _fmt
from .continuous import Cauchy, LogUniform, TruncLogNorm, TruncNorm, Uniform
from .discrete import Discrete
from .mixture import MIXTURE

log = logging.getLogger(__name__)

T = TypeVar("T")


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
