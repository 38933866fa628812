"""Published API (``scale_eq.layers.scalq_eq_nonlin``) as thin subclasses of our nonlinearity.

Keeps the published names and argument order (``non_lin, base_res, normalization, channels,
[pool_window,] max_res, increment``; ``activation=`` is accepted for ``non_lin``) so code
written against the published package, e.g. its README example, runs unmodified. The work is
done by :class:`scale_eq.fourier.nonlinearity.ScaleEqNonlinearity`: exactly scale-equivariant
on its grid, with the published Nyquist bug fixed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..fourier.nonlinearity import ScaleEqNonlinearity, ScaleEqNonlinearity1d

__all__ = ["scaleEqNonlin", "scaleEqNonlin1d", "scaleEqNonlinMaxp"]

Activation = Callable[[torch.Tensor], torch.Tensor]


def _activation(non_lin: Activation | None, activation: Activation | None) -> Activation:
    if non_lin is not None and activation is not None:
        raise TypeError("give the nonlinearity once: non_lin or activation")
    chosen = non_lin if non_lin is not None else activation
    return torch.relu if chosen is None else chosen


class _FeatureMixin:
    def get_feature(self, x: torch.Tensor) -> torch.Tensor:
        """Real inputs in, real maps out (fft -> layer -> ifft), as published."""
        axes = (-1,) if isinstance(self, ScaleEqNonlinearity1d) else (-2, -1)
        spectrum = torch.fft.fftn(x, dim=axes, norm="forward")
        return torch.fft.ifftn(self(spectrum), dim=axes, norm="forward").real  # type: ignore[operator]


class scaleEqNonlin(_FeatureMixin, ScaleEqNonlinearity):  # published name
    """``scaleEqNonlin(non_lin, base_res, normalization=None, channels=None, max_res=28,
    increment=1)``."""

    def __init__(
        self,
        non_lin: Activation | None = None,
        base_res: int = 6,
        normalization: str | None = None,
        channels: int | None = None,
        max_res: int = 28,
        increment: int = 1,
        *,
        activation: Activation | None = None,
    ) -> None:
        super().__init__(
            activation=_activation(non_lin, activation),
            base_res=base_res,
            max_res=max_res,
            channels=channels,
            normalization=normalization,
            increment=increment,
        )


class scaleEqNonlinMaxp(_FeatureMixin, ScaleEqNonlinearity):  # published name
    """``scaleEqNonlinMaxp(non_lin, base_res, normalization=None, channels=None, pool_window=2,
    max_res=28, increment=1)``: nonlinearity + equivariant max-pool, N -> ceil(N / pool)."""

    def __init__(
        self,
        non_lin: Activation | None = None,
        base_res: int = 6,
        normalization: str | None = None,
        channels: int | None = None,
        pool_window: int = 2,
        max_res: int = 28,
        increment: int = 1,
        *,
        activation: Activation | None = None,
    ) -> None:
        super().__init__(
            activation=_activation(non_lin, activation),
            base_res=base_res,
            max_res=max_res,
            channels=channels,
            normalization=normalization,
            increment=increment,
            pool_window=pool_window,
        )


class scaleEqNonlin1d(_FeatureMixin, ScaleEqNonlinearity1d):  # published name
    """``scaleEqNonlin1d(non_lin, base_res, normalization=None, channels=None)``; ``max_res``
    and ``increment`` are ours (the published 1D layer has one norm for every resolution)."""

    def __init__(
        self,
        non_lin: Activation | None = None,
        base_res: int = 8,
        normalization: str | None = None,
        channels: int | None = None,
        max_res: int = 128,
        increment: int = 1,
        *,
        activation: Activation | None = None,
    ) -> None:
        super().__init__(
            activation=_activation(non_lin, activation),
            base_res=base_res,
            max_res=max_res,
            channels=channels,
            normalization=normalization,
            increment=increment,
        )
