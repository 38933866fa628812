"""Scale laws: spec parsing and canonical round trips, the laws themselves (KS against their own
cdf and scipy's), equal discrete counts, mixture shares, determinism, one-line errors, the registry
of user laws and the `distributions` command."""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st
from scale_datasets.cli.app import run
from scipy import stats

import scale_datasets
import scale_datasets.distributions.registry as distributions
from scale_datasets.distributions import (
    Cauchy,
    Discrete,
    LogUniform,
    Mixture,
    ScaleLaw,
    TruncLogNorm,
    TruncNorm,
    Uniform,
    list_distributions,
    parse_distribution,
    register_distribution,
)
from scale_datasets.errors import InvalidParameterError

BUILTINS = ["cauchy", "discrete", "loguniform", "mixture", "trunclognorm", "truncnorm", "uniform"]
N_KS = 50_000
P_MIN = 1e-3


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """User laws registered in a test vanish after it."""
    monkeypatch.setattr(distributions, "_REGISTRY", dict(distributions._REGISTRY))


# ---------------------------------------------------------------------------------------------
# Parsing and canonical strings
# ---------------------------------------------------------------------------------------------


def test_the_issue_examples_parse_to_their_laws():
    assert parse_distribution("loguniform(1, 8)") == LogUniform(1.0, 8.0)
    assert parse_distribution("loguniform(1, 2.83)") == LogUniform(1.0, 2.83)
    assert parse_distribution("discrete(1, 2, 4, 8)") == Discrete((1.0, 2.0, 4.0, 8.0))
    mix = parse_distribution("mixture(0.3 * uniform(1, 2), 0.7 * trunclognorm(0.7, 0.4, 1, 8))")
    assert mix == Mixture((0.3, 0.7), (Uniform(1, 2), TruncLogNorm(0.7, 0.4, 1, 8)))
    assert (
        mix.canonical == "mixture(0.3 * uniform(1.0, 2.0), 0.7 * trunclognorm(0.7, 0.4, 1.0, 8.0))"
    )
    assert mix.params == {
        "weights": [0.3, 0.7],
        "components": ["uniform(1.0, 2.0)", "trunclognorm(0.7, 0.4, 1.0, 8.0)"],
    }
    assert mix.support == (1.0, 8.0)


def test_keywords_whitespace_signs_and_scientific_notation():
    law = TruncNorm(-0.5, 2.0, 1.0, 4.0)
    for spec in [
        "truncnorm(-0.5, 2, 1, 4)",
        "truncnorm(mean=-0.5, sd=2, lo=1, hi=4)",
        "truncnorm(-0.5, 2, hi=4, lo=1)",
        "  truncnorm ( - 0.5 ,\n\t2.0e0 , 1 , .4E1 )  ",
        "truncnorm(-5e-1, +2., 1, 4)",
    ]:
        assert parse_distribution(spec) == law, spec
    assert law.canonical == "truncnorm(-0.5, 2.0, 1.0, 4.0)"
    assert law.params == {"mean": -0.5, "sd": 2.0, "lo": 1.0, "hi": 4.0}
    assert str(law) == law.canonical


def test_canonical_numbers_are_repr_exact():
    law = parse_distribution("uniform(0.1, 2.8284271247461903)")
    assert law.canonical == "uniform(0.1, 2.8284271247461903)"
    assert parse_distribution("loguniform(1e-5, 1e16)").canonical == "loguniform(1e-05, 1e+16)"
    third = 1 / 3
    law = Uniform(third, 2**1.5)
    assert law.canonical == f"uniform({third!r}, {2**1.5!r})"
    assert parse_distribution(law.canonical).lo == third


positive = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False)
real = st.floats(min_value=-100.0, max_value=100.0, allow_nan=False, allow_infinity=False)
spread = st.floats(min_value=1e-2, max_value=1e2, allow_nan=False, allow_infinity=False)
interval = st.tuples(positive, positive).filter(lambda t: t[0] != t[1]).map(sorted)


def _build(make, *args) -> ScaleLaw:
    """Construct a law, rejecting the (valid) case of an interval with no float mass."""
    try:
        return make(*args)
    except InvalidParameterError as exc:
        if "no probability mass" in str(exc):
            reject()
        raise


@st.composite
def builtin_laws(draw, depth: int = 0) -> ScaleLaw:
    kinds = ["uniform", "loguniform", "truncnorm", "trunclognorm", "cauchy", "discrete"]
    if depth == 0:
        kinds.append("mixture")
    kind = draw(st.sampled_from(kinds))
    if kind == "uniform":
        return Uniform(*draw(interval))
    if kind == "loguniform":
        return _build(LogUniform, *draw(interval))
    if kind == "truncnorm":
        return _build(TruncNorm, draw(real), draw(spread), *draw(interval))
    if kind == "trunclognorm":
        return _build(TruncLogNorm, draw(st.floats(-5, 5)), draw(spread), *draw(interval))
    if kind == "cauchy":
        return _build(Cauchy, draw(real), draw(spread), *draw(interval))
    if kind == "discrete":
        return Discrete(tuple(draw(st.lists(positive, min_size=1, max_size=6, unique=True))))
    raw = draw(st.lists(st.floats(0.01, 1.0), min_size=1, max_size=4))
    weights = tuple(w / math.fsum(raw) for w in raw)
    if abs(math.fsum(weights) - 1.0) > 1e-9:  # pragma: no cover - normalised sums are ~1
        reject()
    components = tuple(draw(builtin_laws(depth + 1)) for _ in weights)
    return Mixture(weights, components)


@settings(max_examples=300, deadline=None)
@given(builtin_laws())
def test_canonical_round_trips_exactly(law: ScaleLaw):
    parsed = parse_distribution(law.canonical)
    assert parsed == law
    assert parsed.canonical == law.canonical
    assert type(parsed) is type(law)
    assert parsed.params == law.params
    assert parsed.support == law.support
    # the keyword form of the fixed-arity laws parses to the same law
    if not isinstance(law, (Discrete, Mixture)):
        keywords = ", ".join(f"{k}={v!r}" for k, v in law.params.items())
        assert parse_distribution(f"{law.name}({keywords})") == law


@settings(max_examples=150, deadline=None)
@given(builtin_laws(), st.integers(0, 200), st.integers(0, 2**32 - 1))
def test_draws_are_positive_float64_inside_the_support(law: ScaleLaw, n: int, seed: int):
    draws = law.sample(rng(seed), n)
    assert draws.dtype == np.float64 and draws.shape == (n,)
    lo, hi = law.support
    assert np.all(draws > 0) and np.all(draws >= lo) and np.all(draws <= hi)
    np.testing.assert_array_equal(draws, law.sample(rng(seed), n))
    if law.has_cdf:
        c = law.cdf(draws)
        assert np.all((c >= 0) & (c <= 1))


def test_laws_pickle_and_hash():
    for spec in [
        "loguniform(1, 8)",
        "discrete(1, 2, 4)",
        "mixture(0.5 * cauchy(2, 1, 1, 10), 0.5 * truncnorm(3, 1, 1, 6))",
    ]:
        law = parse_distribution(spec)
        assert pickle.loads(pickle.dumps(law)) == law
        assert hash(parse_distribution(spec)) == hash(law)


# ---------------------------------------------------------------------------------------------
# The laws: exact values, KS tests, scipy
# ---------------------------------------------------------------------------------------------


def test_exact_cdf_and_pdf_values():
    u = Uniform(1, 3)
    np.testing.assert_array_equal(u.cdf([0.5, 1, 2, 3, 4]), [0, 0, 0.5, 1, 1])
    np.testing.assert_array_equal(u.pdf([0.5, 1, 2, 3, 4]), [0, 0.5, 0.5, 0.5, 0])
    lu = LogUniform(1, 4)
    np.testing.assert_array_equal(lu.cdf([-1, 0, 1, 4, 9]), [0, 0, 0, 1, 1])
    assert lu.cdf(2.0) == pytest.approx(0.5, rel=1e-15)
    assert lu.pdf(2.0) == pytest.approx(1 / (2 * math.log(4)), rel=1e-15)
    np.testing.assert_array_equal(lu.pdf([-1, 0, 0.5, 5]), [0, 0, 0, 0])
    c = Cauchy(2, 1, 1, 3)  # symmetric about loc: half the mass on each side
    assert c.cdf(2.0) == pytest.approx(0.5, rel=1e-15)
    np.testing.assert_array_equal(c.cdf([0, 1, 3, 5]), [0, 0, 1, 1])
    assert c.pdf(2.0) == pytest.approx(1 / (2 * math.atan(1)), rel=1e-15)  # 1 / (B - A)
    t = TruncNorm(2, 1, 1, 3)
    assert t.cdf(2.0) == pytest.approx(0.5, rel=1e-14)
    np.testing.assert_array_equal(t.cdf([0, 1, 3, 5]), [0, 0, 1, 1])
    tl = TruncLogNorm(math.log(2), 0.5, 1, 4)  # log s symmetric about log 2 on [0, log 4]
    assert tl.cdf(2.0) == pytest.approx(0.5, rel=1e-14)
    np.testing.assert_array_equal(tl.cdf([-1, 0, 1, 4, 5]), [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(tl.pdf([-1, 0, 0.5, 5]), [0, 0, 0, 0])


def _conditional(dist, lo: float, hi: float):
    """scipy's cdf of `dist` conditioned on [lo, hi]."""
    f_lo, f_hi = dist.cdf(lo), dist.cdf(hi)
    return lambda x: np.clip((dist.cdf(x) - f_lo) / (f_hi - f_lo), 0.0, 1.0)


MIX_SPEC = "mixture(0.3 * uniform(1, 2), 0.7 * trunclognorm(0.7, 0.4, 1, 8))"
# spec -> (scipy's cdf of the same law, scipy's pdf or None)
SCIPY_REFERENCE = {
    "uniform(1, 8)": (stats.uniform(1, 7).cdf, stats.uniform(1, 7).pdf),
    "loguniform(1, 8)": (stats.loguniform(1, 8).cdf, stats.loguniform(1, 8).pdf),
    "loguniform(1, 2.83)": (stats.loguniform(1, 2.83).cdf, stats.loguniform(1, 2.83).pdf),
    "truncnorm(2, 1.5, 1, 8)": (
        stats.truncnorm(-1 / 1.5, 6 / 1.5, loc=2, scale=1.5).cdf,
        stats.truncnorm(-1 / 1.5, 6 / 1.5, loc=2, scale=1.5).pdf,
    ),
    "trunclognorm(0.7, 0.4, 1, 8)": (
        _conditional(stats.lognorm(s=0.4, scale=math.exp(0.7)), 1, 8),
        None,
    ),
    "cauchy(2, 1, 1, 10)": (_conditional(stats.cauchy(2, 1), 1, 10), None),
    MIX_SPEC: (
        lambda x: (
            0.3 * stats.uniform(1, 1).cdf(x)
            + 0.7 * _conditional(stats.lognorm(s=0.4, scale=math.exp(0.7)), 1, 8)(x)
        ),
        None,
    ),
}


@pytest.mark.parametrize("spec", list(SCIPY_REFERENCE))
def test_ks_against_the_laws_cdf_and_scipy(spec: str):
    law = parse_distribution(spec)
    draws = law.sample(rng(2024), N_KS)
    assert draws.shape == (N_KS,) and draws.dtype == np.float64
    assert stats.kstest(draws, law.cdf).pvalue > P_MIN
    scipy_cdf, scipy_pdf = SCIPY_REFERENCE[spec]
    assert stats.kstest(draws, scipy_cdf).pvalue > P_MIN
    lo, hi = law.support
    grid = np.linspace(lo - 1, hi + 1, 1001)
    np.testing.assert_allclose(law.cdf(grid), scipy_cdf(grid), rtol=1e-12, atol=1e-14)
    if scipy_pdf is not None:
        np.testing.assert_allclose(law.pdf(grid), scipy_pdf(grid), rtol=1e-12, atol=1e-14)


def test_trunclognorm_is_a_truncated_normal_in_log_s():
    mu, sigma, lo, hi = 0.7, 0.4, 1.0, 8.0
    law = TruncLogNorm(mu, sigma, lo, hi)
    logs = stats.truncnorm((math.log(lo) - mu) / sigma, (math.log(hi) - mu) / sigma, mu, sigma)
    draws = law.sample(rng(5), N_KS)
    assert stats.kstest(np.log(draws), logs.cdf).pvalue > P_MIN
    x = np.linspace(1, 8, 57)
    np.testing.assert_allclose(law.pdf(x), logs.pdf(np.log(x)) / x, rtol=1e-12)


def test_truncated_cauchy_pdf_integrates_to_its_cdf():
    law = Cauchy(2, 0.5, 1, 10)
    x = np.linspace(1, 10, 20001)
    integral = np.concatenate([[0], np.cumsum((law.pdf(x[1:]) + law.pdf(x[:-1])) / 2 * np.diff(x))])
    np.testing.assert_allclose(integral, law.cdf(x), atol=1e-7)


def test_sampling_is_the_inverse_cdf_of_rng_random():
    """Continuous laws draw u = rng.random(n) and return ppf(u): pinned, so stored files stay."""
    u = rng(3).random(6)
    np.testing.assert_array_equal(Uniform(1, 8).sample(rng(3), 6), 1 + 7 * u)
    np.testing.assert_array_equal(
        LogUniform(1, 8).sample(rng(3), 6), np.exp(math.log(1) + math.log(8) * u)
    )
    np.testing.assert_array_equal(
        TruncNorm(2, 1.5, 1, 8).sample(rng(3), 6),
        stats.truncnorm.ppf(u, -1 / 1.5, 6 / 1.5, loc=2, scale=1.5),
    )
    a, b = math.atan(-1.0), math.atan(8.0)
    np.testing.assert_allclose(
        Cauchy(2, 1, 1, 10).sample(rng(3), 6), 2 + np.tan(a + (b - a) * u), rtol=1e-15
    )
    for law in [Uniform(1, 8), LogUniform(1, 8), TruncNorm(2, 1.5, 1, 8), Cauchy(2, 1, 1, 10)]:
        np.testing.assert_allclose(law.cdf(law.sample(rng(3), 6)), u, rtol=1e-9)


@pytest.mark.parametrize(
    "spec",
    [
        "uniform(1, 8)",
        "loguniform(1, 8)",
        "truncnorm(2, 1.5, 1, 8)",
        "trunclognorm(0.7, 0.4, 1, 8)",
        "cauchy(2, 1, 1, 10)",
        "discrete(1, 2, 4, 8)",
        MIX_SPEC,
    ],
)
def test_draws_are_a_function_of_the_generator_state(spec: str):
    law = parse_distribution(spec)
    first = law.sample(rng(11), 1000)
    np.testing.assert_array_equal(first, law.sample(rng(11), 1000))
    np.testing.assert_array_equal(first, parse_distribution(law.canonical).sample(rng(11), 1000))
    assert not np.array_equal(first, law.sample(rng(12), 1000))
    g = rng(11)
    both = np.concatenate([law.sample(g, 500), law.sample(g, 500)])
    g = rng(11)
    np.testing.assert_array_equal(both[:500], law.sample(g, 500))
    np.testing.assert_array_equal(both[500:], law.sample(g, 500))
    assert law.sample(rng(11), 0).shape == (0,)


def test_discrete_gives_equal_counts_of_the_listed_values_shuffled():
    law = parse_distribution("discrete(1, 2, 4, 8)")
    for n in [0, 1, 3, 4, 50_000, 50_001, 50_003]:
        draws = law.sample(rng(n), n)
        values = np.unique(draws)
        assert set(values.tolist()) <= {1.0, 2.0, 4.0, 8.0}
        full = np.array([np.sum(draws == v) for v in (1.0, 2.0, 4.0, 8.0)])
        assert full.sum() == n
        assert full.max() - full.min() <= 1
        assert sorted(full.tolist()) == sorted([n // 4 + (i < n % 4) for i in range(4)])
    # the values that get the extra draw are drawn, not always the first ones
    extra = {
        tuple(np.flatnonzero([np.sum(law.sample(rng(s), 5) == v) == 2 for v in law.values]))
        for s in range(40)
    }
    assert len(extra) == 4
    # shuffled: no long runs of one value
    draws = law.sample(rng(0), 40_000)
    assert not np.array_equal(draws, np.sort(draws))
    assert set(draws[:40].tolist()) == {1.0, 2.0, 4.0, 8.0}
    assert np.mean(draws[1:] == draws[:-1]) == pytest.approx(0.25, abs=0.01)


def test_discrete_has_a_step_cdf_and_no_pdf():
    law = Discrete((4.0, 1.0, 2.0))
    assert law.support == (1.0, 4.0) and law.has_cdf and not law.has_pdf
    np.testing.assert_array_equal(
        law.cdf([0.5, 1.0, 1.5, 2.0, 3.9, 4.0, 9.0]), [0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 1, 1]
    )
    with pytest.raises(InvalidParameterError, match="has no pdf: it is discrete"):
        law.pdf([1.0])
    assert law.canonical == "discrete(4.0, 1.0, 2.0)"  # the listed order is kept
    assert law.params == {"values": [4.0, 1.0, 2.0]}


def test_mixture_component_counts_within_4_sd():
    weights = (0.2, 0.3, 0.5)
    law = parse_distribution(
        "mixture(0.2 * uniform(1, 2), 0.3 * loguniform(3, 4), 0.5 * truncnorm(5.5, 1, 5, 6))"
    )
    for seed in range(3):
        draws = law.sample(rng(seed), N_KS)
        counts = [np.sum((draws >= a) & (draws <= a + 1)) for a in (1, 3, 5)]
        assert sum(counts) == N_KS
        for c, w in zip(counts, weights, strict=True):
            assert abs(c - N_KS * w) <= 4 * math.sqrt(N_KS * w * (1 - w)), (c, w)


def test_mixture_cdf_pdf_support_and_atoms():
    law = parse_distribution("mixture(0.25 * uniform(2, 4), 0.75 * uniform(1, 2))")
    assert law.support == (1.0, 4.0)
    np.testing.assert_array_equal(law.cdf([1, 1.5, 2, 3, 4]), [0, 0.375, 0.75, 0.875, 1])
    np.testing.assert_array_equal(law.pdf([0.5, 1.5, 3, 5]), [0, 0.75, 0.125, 0])
    atoms = parse_distribution("mixture(0.5 * discrete(1, 2), 0.5 * uniform(1, 2))")
    assert atoms.has_cdf and not atoms.has_pdf
    np.testing.assert_array_equal(atoms.cdf([0.5, 1.0, 1.5, 2.0]), [0, 0.25, 0.5, 1])
    with pytest.raises(InvalidParameterError, match="has no pdf"):
        atoms.pdf([1.5])
    one = parse_distribution("mixture(1 * loguniform(1, 8))")
    assert one.support == (1.0, 8.0)
    nested = parse_distribution(
        "mixture(0.5 * mixture(0.5 * uniform(1, 2), 0.5 * uniform(2, 3)), 0.5 * uniform(3, 4))"
    )
    np.testing.assert_array_equal(nested.cdf([2, 3]), [0.25, 0.5])
    assert parse_distribution(nested.canonical) == nested


# ---------------------------------------------------------------------------------------------
# Bad specs: one line naming the spec and the problem
# ---------------------------------------------------------------------------------------------

BAD_SPECS = [
    ("foo(1, 2)", "unknown law 'foo' (known: " + ", ".join(BUILTINS) + ")"),
    ("Uniform(1, 2)", "unknown law 'Uniform'"),
    ("uniform(1, 2, 3)", "wrong arguments for uniform(lo, hi): too many positional arguments"),
    ("uniform(1)", "wrong arguments for uniform(lo, hi): missing a required argument: 'hi'"),
    ("truncnorm(1, 2, 3)", "wrong arguments for truncnorm(mean, sd, lo, hi)"),
    ("uniform(a=1, hi=2)", "uniform(lo, hi) has no parameter 'a'"),
    ("discrete(values=1)", "discrete(v1, v2, ...) has no parameter 'values'"),
    ("uniform(lo=1, lo=2)", "'lo' given twice"),
    ("uniform(lo=1, 2)", "positional argument after keyword arguments at column 15"),
    ("uniform(2, 1)", "uniform: lo must be < hi (got lo=2.0, hi=1.0)"),
    ("loguniform(3, 3)", "loguniform: lo must be < hi (got lo=3.0, hi=3.0)"),
    ("cauchy(2, 1, 8, 1)", "cauchy: lo must be < hi"),
    ("uniform(0, 1)", "uniform: lo must be > 0, scales live in (0, inf) (got lo=0.0)"),
    ("loguniform(-1, 8)", "loguniform: lo must be > 0"),
    ("trunclognorm(0, 1, -2, 8)", "trunclognorm: lo must be > 0"),
    ("discrete(0, 1)", "discrete: values must be > 0, scales live in (0, inf) (got 0.0)"),
    ("discrete(1, -2)", "discrete: values must be > 0"),
    ("discrete(1, 2, 1)", "discrete: values must be distinct (1.0 repeats)"),
    ("discrete()", "discrete: needs at least one value"),
    ("truncnorm(2, 0, 1, 8)", "truncnorm: sd must be > 0 (got sd=0.0)"),
    ("truncnorm(2, -1, 1, 8)", "truncnorm: sd must be > 0 (got sd=-1.0)"),
    ("trunclognorm(0, -0.5, 1, 8)", "trunclognorm: sigma must be > 0 (got sigma=-0.5)"),
    ("cauchy(2, 0, 1, 8)", "cauchy: scale must be > 0 (got scale=0.0)"),
    (
        "mixture(0.3 * uniform(1, 2), 0.6 * uniform(2, 3))",
        "mixture: weights must sum to 1 within 1e-9 (they sum to 0.8999999999999999)",
    ),
    ("mixture(0.5 * uniform(1, 2), 0.5 * uniform(2, 3), 0.1 * uniform(1, 8))", "sum to 1"),
    ("mixture(-0.5 * uniform(1, 2), 1.5 * uniform(2, 3))", "weights must be > 0 (got -0.5)"),
    ("mixture(0 * uniform(1, 2), 1 * uniform(2, 3))", "weights must be > 0 (got 0.0)"),
    ("mixture(0.5 * uniform(2, 1), 0.5 * uniform(1, 2))", "uniform: lo must be < hi"),
    ("mixture(0.5 * bar(1), 0.5 * uniform(1, 2))", "unknown law 'bar'"),
    ("mixture()", "mixture needs at least one 'w * law' term"),
    ("mixture(uniform(1, 2))", "expected a weight (mixture terms are 'w * law') at column 9"),
    ("mixture(1 uniform(1, 2))", "expected '*' after the weight"),
    ("mixture(1 * uniform(1, 2), lo=3)", "expected a weight"),
    ("uniform(1,, 2)", "expected a number or name=number at column 11, found ','"),
    ("uniform(1, 2", "expected ',' or ')' at column 13, found end of spec"),
    ("uniform(1, 2,)", "expected a number or name=number at column 14, found ')'"),
    ("uniform 1, 2", "expected '(' after 'uniform' at column 9, found '1'"),
    ("uniform(1, 2) x", "unexpected 'x' at column 15 after the law"),
    ("uniform(1; 2)", "unexpected character ';' at column 10"),
    ("uniform(1, 2**1.5)", "expected ',' or ')' at column 13, found '*'"),
    ("uniform(1, inf)", "expected a number or name=number at column 12, found 'inf'"),
    ("uniform(1, 1e999)", "number '1e999' at column 12 is not finite"),
    ("uniform(1, 2.5.1)", "expected ',' or ')' at column 15, found '.1'"),
    ("", "expected a law name at column 1, found end of spec"),
    ("   ", "expected a law name at column 4, found end of spec"),
    ("(1, 2)", "expected a law name at column 1, found '('"),
    ("truncnorm(0, 0.001, 50, 60)", None),  # valid: a far tail, scipy's truncnorm copes
]


@pytest.mark.parametrize(("spec", "problem"), BAD_SPECS)
def test_bad_specs_raise_one_line_naming_spec_and_problem(spec: str, problem: str | None):
    if problem is None:
        assert parse_distribution(spec).sample(rng(), 10).min() >= 50
        return
    with pytest.raises(InvalidParameterError) as info:
        parse_distribution(spec)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"distribution '{spec}': ")
    assert problem in message
    assert info.value.exit_code == 2


def test_unknown_law_message_in_full():
    with pytest.raises(InvalidParameterError) as info:
        parse_distribution("foo(1, 2)")
    assert str(info.value) == (
        "distribution 'foo(1, 2)': unknown law 'foo' (known: cauchy, discrete, loguniform, "
        "mixture, trunclognorm, truncnorm, uniform)"
    )


def test_a_spec_over_several_lines_errs_on_one_line():
    assert parse_distribution("uniform(\n 1,\n 2)") == Uniform(1, 2)
    with pytest.raises(InvalidParameterError) as info:
        parse_distribution("uniform(\n 2,\n 1)")
    assert str(info.value) == (
        "distribution 'uniform(\\n 2,\\n 1)': uniform: lo must be < hi (got lo=2.0, hi=1.0)"
    )


def test_bad_arguments_to_laws_and_sample():
    with pytest.raises(InvalidParameterError, match="must be a string"):
        parse_distribution(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="uniform: lo must be < hi"):
        Uniform(2, 1)
    with pytest.raises(InvalidParameterError, match="hi must be finite"):
        Uniform(1, math.inf)
    with pytest.raises(InvalidParameterError, match="must be a number"):
        Uniform(1, "2")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="no probability mass"):
        Cauchy(0, 1, 1e300, 2e300)
    law = Uniform(1, 2)
    with pytest.raises(InvalidParameterError, match=r"rng must be a numpy\.random\.Generator"):
        law.sample(np.random.RandomState(0), 3)  # type: ignore[arg-type]
    for n in [-1, 2.5, True]:
        with pytest.raises(InvalidParameterError, match="n must be an integer >= 0"):
            law.sample(rng(), n)  # type: ignore[arg-type]
    assert law.sample(rng(), np.int64(3)).shape == (3,)


# ---------------------------------------------------------------------------------------------
# The registry of user laws
# ---------------------------------------------------------------------------------------------


def test_register_a_class(registry):
    @register_distribution("shiftexp")
    class ShiftedExponential:
        """s = lo + Exponential(rate)."""

        def __init__(self, lo: float, rate: float = 1.0) -> None:
            if rate <= 0:
                raise ValueError("rate must be > 0")
            self.lo, self.rate = lo, rate

        def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
            return self.lo + rng.exponential(1 / self.rate, n)

        def cdf(self, x: np.ndarray) -> np.ndarray:
            return np.where(x >= self.lo, -np.expm1(-self.rate * (x - self.lo)), 0.0)

        @property
        def support(self) -> tuple[float, float]:
            return (self.lo, math.inf)

    assert ShiftedExponential.__name__ == "ShiftedExponential"  # returned unchanged
    law = parse_distribution("shiftexp(1)")
    assert law.canonical == "shiftexp(1.0, 1.0)"  # defaults are written out
    assert law == parse_distribution("shiftexp(lo=1, rate=1)") == parse_distribution(law.canonical)
    assert law.name == "shiftexp" and law.params == {"lo": 1.0, "rate": 1.0}
    assert law.support == (1.0, math.inf) and law.has_cdf and not law.has_pdf
    with pytest.raises(InvalidParameterError, match="has no pdf"):
        law.pdf([2.0])
    draws = parse_distribution("shiftexp(0.5, rate=2)").sample(rng(4), 20_000)
    assert stats.kstest(draws, stats.expon(loc=0.5, scale=0.5).cdf).pvalue > P_MIN
    assert stats.kstest(draws, parse_distribution("shiftexp(0.5, 2)").cdf).pvalue > P_MIN
    mix = parse_distribution("mixture(0.5 * shiftexp(1, 2), 0.5 * uniform(1, 2))")
    assert mix.support == (1.0, math.inf)
    assert mix.cdf(np.array([1.0]))[0] == 0.0
    assert pickle.loads(pickle.dumps(Uniform(1, 2))) == Uniform(1, 2)
    with pytest.raises(InvalidParameterError) as info:
        parse_distribution("shiftexp(1, -1)")
    assert str(info.value) == "distribution 'shiftexp(1, -1)': rate must be > 0"
    with pytest.raises(InvalidParameterError, match="wrong arguments for shiftexp"):
        parse_distribution("shiftexp()")
    row = next(r for r in list_distributions() if r["name"] == "shiftexp")
    assert row == {
        "name": "shiftexp",
        "parameters": ["lo", "rate"],
        "formula": "s = lo + Exponential(rate).",
        "support": "declared by the law's support",
        "builtin": False,
    }


def test_register_a_function(registry):
    @register_distribution("pow2", formula="s = 2^u, u ~ U[lo, hi]")
    def pow2(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
        return 2.0 ** rng.uniform(lo, hi, n)

    law = parse_distribution("pow2(0, hi = 3)")
    assert law.canonical == "pow2(0.0, 3.0)" and parse_distribution(law.canonical) == law
    assert not law.has_cdf and not law.has_pdf and law.support == (0.0, math.inf)
    with pytest.raises(InvalidParameterError, match=r"law 'pow2\(0.0, 3.0\)' has no cdf"):
        law.cdf([2.0])
    np.testing.assert_array_equal(law.sample(rng(1), 5), 2.0 ** rng(1).uniform(0, 3, 5))
    row = next(r for r in list_distributions() if r["name"] == "pow2")
    assert row["parameters"] == ["lo", "hi"] and row["formula"] == "s = 2^u, u ~ U[lo, hi]"
    assert row["support"] == "(0, inf)" and row["builtin"] is False

    @register_distribution("pick")
    def pick(rng: np.random.Generator, n: int, *values: float, jitter: float = 0.0) -> np.ndarray:
        return rng.choice(np.asarray(values), n) * (1 + jitter * rng.random(n))

    law = parse_distribution("pick(1, 2, 4, jitter=0.5)")
    assert law.canonical == "pick(1.0, 2.0, 4.0, jitter=0.5)"
    assert parse_distribution(law.canonical) == law
    assert law.params == {"values": [1.0, 2.0, 4.0], "jitter": 0.5}
    assert parse_distribution("pick(3)").canonical == "pick(3.0, jitter=0.0)"
    row = next(r for r in list_distributions() if r["name"] == "pick")
    assert row["parameters"] == ["values...", "jitter="]


def test_user_draws_are_checked(registry):
    @register_distribution("negative")
    def negative(rng: np.random.Generator, n: int) -> np.ndarray:
        return -rng.random(n)

    @register_distribution("short")
    def short(rng: np.random.Generator, n: int) -> np.ndarray:
        return np.ones(max(n - 1, 0))

    @register_distribution("escapes")
    class Escapes:
        support = (1.0, 2.0)

        def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
            return np.full(n, 3.0)

    with pytest.raises(InvalidParameterError, match=r"law 'negative\(\)': drew 4 of 4 values"):
        parse_distribution("negative()").sample(rng(), 4)
    with pytest.raises(InvalidParameterError, match=r"gave shape \(3,\), not \(4,\)"):
        parse_distribution("short()").sample(rng(), 4)
    with pytest.raises(InvalidParameterError, match=r"outside its support \[1.0, 2.0\]"):
        parse_distribution("escapes()").sample(rng(), 4)


def test_registration_errors(registry):
    @register_distribution("mine")
    def mine(rng: np.random.Generator, n: int, a: float) -> np.ndarray:
        return np.full(n, a)

    with pytest.raises(InvalidParameterError, match=r"'mine' is already registered .*replace=True"):
        register_distribution("mine")(mine)

    @register_distribution("mine", replace=True)
    def mine2(rng: np.random.Generator, n: int, a: float, b: float) -> np.ndarray:
        return np.full(n, a + b)

    assert parse_distribution("mine(1, 2)").sample(rng(), 2).tolist() == [3.0, 3.0]
    for name in BUILTINS:
        with pytest.raises(InvalidParameterError, match="built-in law and cannot be replaced"):
            register_distribution(name, replace=True)
    for name in ["1abc", "a-b", "", "a b"]:
        with pytest.raises(InvalidParameterError, match="a name is letters, digits and '_'"):
            register_distribution(name)

    class NoSample:
        pass

    with pytest.raises(InvalidParameterError, match="has no sample"):
        register_distribution("nosample")(NoSample)
    with pytest.raises(InvalidParameterError, match=r"must take \(rng, n, \*params\)"):
        register_distribution("onearg")(lambda rng: rng)
    with pytest.raises(InvalidParameterError, match=r"\*\*kw is not supported"):
        register_distribution("kw")(lambda rng, n, **kw: np.ones(n))
    with pytest.raises(InvalidParameterError, match="must be a number"):
        register_distribution("baddefault")(lambda rng, n, a=None: np.ones(n))
    with pytest.raises(InvalidParameterError, match="expected a class or a function"):
        register_distribution("notcallable")(3)

    @register_distribution("badsupport")
    class BadSupport:
        support = (-1.0, 2.0)

        def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
            return np.ones(n)

    with pytest.raises(InvalidParameterError, match="support must satisfy 0 <= lo < hi"):
        parse_distribution("badsupport()")
    assert {"nosample", "onearg", "kw", "baddefault", "notcallable"}.isdisjoint(
        r["name"] for r in list_distributions()
    )


def test_unregistered_user_law_is_unknown():
    with pytest.raises(InvalidParameterError, match="unknown law 'shiftexp'"):
        parse_distribution("shiftexp(1.0, 1.0)")


# ---------------------------------------------------------------------------------------------
# Registry listing, package exports, CLI
# ---------------------------------------------------------------------------------------------


def test_list_distributions_covers_the_builtins():
    rows = list_distributions()
    assert [r["name"] for r in rows] == BUILTINS
    by_name = {r["name"]: r for r in rows}
    assert by_name["truncnorm"]["parameters"] == ["mean", "sd", "lo", "hi"]
    assert by_name["trunclognorm"]["parameters"] == ["mu", "sigma", "lo", "hi"]
    assert by_name["cauchy"]["parameters"] == ["loc", "scale", "lo", "hi"]
    assert by_name["discrete"]["parameters"] == ["v1", "v2", "..."]
    assert by_name["mixture"]["parameters"] == ["w1 * law1", "w2 * law2", "..."]
    for row in rows:
        assert row["builtin"] is True
        assert row["formula"] and "\n" not in row["formula"]
        assert row["support"] and "\n" not in row["support"]
    json.dumps(rows)


def test_package_exports_lazily():
    assert scale_datasets.parse_distribution is parse_distribution
    assert scale_datasets.register_distribution is register_distribution
    assert scale_datasets.list_distributions is list_distributions
    assert {"parse_distribution", "register_distribution", "list_distributions"} <= set(
        scale_datasets.__all__
    )


def test_module_does_not_import_torch_or_scipy_stats():
    code = (
        "import sys, scale_datasets.distributions; "
        "assert 'torch' not in sys.modules and 'scipy.stats' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_distributions(capsys, registry):
    assert run(["distributions"]) == 0
    out = capsys.readouterr().out
    for name in BUILTINS:
        assert f"\n{name}(" in f"\n{out}"
    assert "loguniform(lo, hi) (built in)" in out
    assert "  support: [lo, hi]; 0 < lo < hi" in out  # brackets survive (no rich markup)
    assert "mixture(w1 * law1, w2 * law2, ...) (built in)" in out

    assert run(["distributions", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == list_distributions()

    @register_distribution("pow2")
    def pow2(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
        """s = 2^u with u ~ U[lo, hi]."""
        return 2.0 ** rng.uniform(lo, hi, n)

    assert run(["distributions"]) == 0
    out = capsys.readouterr().out
    assert "pow2(lo, hi) (registered)\n  formula: s = 2^u with u ~ U[lo, hi].\n" in out


def test_discrete_draws_are_pinned():
    """Files store these draws: a change to how the discrete law draws must be deliberate."""
    draws = parse_distribution("discrete(1, 2, 4, 8)").sample(np.random.default_rng(0), 5)
    assert draws.tolist() == [4.0, 8.0, 4.0, 2.0, 1.0]


def test_a_mixture_cdf_never_passes_one():
    """Weights that sum to 1 only to the last bit (found by hypothesis) gave cdf 1 + 2e-16."""
    w = 0.36861051115910726
    law = Mixture(
        (w, 0.26277897768178543, w), (Uniform(1.0, 2.0), Uniform(1.0, 2.0), Discrete((2.0,)))
    )
    assert law.cdf([2.0, 9.0]).tolist() == [1.0, 1.0]
