"""Scale laws: the distributions a scale factor per sample is drawn from, and their spec strings.

A law is written as a spec string, parsed by `parse_distribution` and stored in a file as its
canonical string (`law.canonical`), which parses back to an equal law:

    loguniform(1, 8)                          -> loguniform(1.0, 8.0)
    truncnorm(mean=2, sd=0.5, lo=1, hi=4)     -> truncnorm(2.0, 0.5, 1.0, 4.0)
    mixture(0.3 * uniform(1, 2), 0.7 * trunclognorm(0.7, 0.4, 1, 8))

The grammar of spec strings is in `spec` (a small recursive-descent parser, never `eval`).

Every law draws only from the `numpy.random.Generator` it is given, so draws are a function of the
generator's state. Built-in laws sample by inverse cdf from `rng.random(n)` (the discrete and
mixture laws by counts and shuffles, see their classes); their cdf and pdf match scipy's where
scipy has the law. A law without a cdf or pdf (the discrete law has a step cdf but no pdf; a law
registered as a function has neither) says so in `has_cdf` / `has_pdf`, and calling the missing
one raises `InvalidParameterError`.

Users add laws with `register_distribution("name")` on a class (constructed with the spec's
numbers; it needs `sample(rng, n)` and may have `cdf(x)`, `pdf(x)` and `support`) or on a function
`f(rng, n, *params) -> array` (no cdf or pdf, support (0, inf)).

Modules: `base` (the `ScaleLaw` base), `continuous`, `discrete` and `mixture`
(the built-in laws), `registry` (`register_distribution`, `list_distributions`, `RegisteredLaw`)
and `spec` (`parse_distribution`).
"""

from __future__ import annotations

from .base import ScaleLaw
from .continuous import Cauchy, LogUniform, TruncLogNorm, TruncNorm, Uniform
from .discrete import Discrete
from .mixture import WEIGHT_TOLERANCE, Mixture
from .registry import RegisteredLaw, list_distributions, register_distribution
from .spec import parse_distribution

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
