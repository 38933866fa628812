"""The mixture law: law i with probability w_i."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from ..errors import InvalidParameterError
from .base import ScaleLaw, _as_float, _fmt

MIXTURE = "mixture"
WEIGHT_TOLERANCE = 1e-9  # |sum of mixture weights - 1| allowed


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
        # Weights summing to 1 only to the last bit could carry the sum past 1.
        total = sum(
            (p * c.cdf(x) for p, c in zip(self.probabilities, self.components, strict=True)),
            np.zeros_like(x),
        )
        return np.clip(total, 0.0, 1.0)

    def pdf(self, x: npt.ArrayLike) -> np.ndarray:
        if not self.has_pdf:
            return super().pdf(x)
        x = np.asarray(x, dtype=np.float64)
        return sum(
            (p * c.pdf(x) for p, c in zip(self.probabilities, self.components, strict=True)),
            np.zeros_like(x),
        )
