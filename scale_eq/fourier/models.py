"""Fourier scale-equivariant classifiers (Rahman & Yeh, NeurIPS 2023) and their registry entries.

A model is: the DFT of the input (norm "forward"), optionally a stem (1x1 projection + scale-
equivariant nonlinearity, the published STL "projector"), a stack of blocks, and the scale-
consistent head. A block of depth d is

    y = NL_out( skip(x) + conv_d(NL_{d-1}( ... NL_1(conv_1(x)) ... )) )

(depth 1: ``NL(conv(x) + skip(x))``, the published MNIST block; depth 2: the published STL block;
depth 0: ``NL(skip(x))``, the stem). Every piece commutes with D_r (the nonlinearities on their
resolution grid), so the final features of ``D_r(x)`` are ``D_r'`` of those of ``x``, with
``r' = ceil(r / total pool)``, and the head turns that into per-resolution logits that agree
exactly between an image and its down-scaled copies.

``width`` multiplies every channel count (tests build width-0.25 models); everything else keeps
the published settings unless overridden.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from scale_datasets.ops.fourier import kept_modes

from ..registry import register_model
from .head import ScaleConsistentHead
from .nonlinearity import ScaleEqNonlinearity, ScaleEqNonlinearity1d
from .spectral_conv import SpectralConv1d, SpectralConv2d, SpectralSkip

__all__ = [
    "FourierBlock",
    "FourierClassifier",
    "FourierOutput",
    "StageSpec",
    "fourier_1d",
    "fourier_mnist",
    "fourier_stl",
]

Activation = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class StageSpec:
    """One block: its width, its convolutions' G / n, and its nonlinearities' resolution grid.

    ``base_res``, ``max_res`` and ``increment`` are in the samples of the block's *input*; a
    ``pool_window`` p > 1 makes the block's last nonlinearity an equivariant max-pool, so the
    block's output has ``ceil(N / p)`` samples per axis. ``depth`` 0 is a projection-only stem.
    """

    out_channels: int
    base_res: int
    max_res: int
    global_modes: int = 0
    local_modes: int = 0
    increment: int = 1
    pool_window: int = 1
    depth: int = 1

    def scaled(self, width: float) -> StageSpec:
        return replace(self, out_channels=max(1, round(self.out_channels * width)))


@dataclass
class FourierOutput:
    """Everything ``forward(x, return_all=True)`` returns.

    ``resolutions`` are the head's resolutions in feature-map samples, matching the R axis of
    ``per_scale_logits``; ``logits`` is its last entry (the input's own resolution).
    """

    logits: torch.Tensor  # (B, classes)
    per_scale_logits: torch.Tensor  # (B, R, classes)
    resolutions: tuple[int, ...]
    features: torch.Tensor  # complex spectrum (B, C, M[, M]), fft norm "forward"
    feature_map: torch.Tensor  # real (B, C, M[, M]) = ifft(features).real


class FourierBlock(nn.Module):
    """``NL_out(skip(x) + conv_d(NL(... conv_1(x))))`` on complex spectra; see the module doc."""

    def __init__(
        self,
        in_channels: int,
        spec: StageSpec,
        *,
        dims: int = 2,
        activation: Activation = torch.relu,
        normalization: str | None = "instance",
        nonlinearity: NonlinearityFactory | None = None,
    ) -> None:
        super().__init__()
        if spec.depth < 0:
            raise ValueError(f"depth must be >= 0, got {spec.depth}")
        if dims == 1 and spec.pool_window != 1:
            raise ValueError("1D blocks do not pool")
        conv_cls = SpectralConv2d if dims == 2 else SpectralConv1d
        out = spec.out_channels
        self.spec = spec
        self.convs = nn.ModuleList(
            conv_cls(in_channels if i == 0 else out, out, spec.global_modes, spec.local_modes)
            for i in range(spec.depth)
        )
        # An inner nonlinearity feeds only the next convolution, which drops every ring above
        # (G - 1) // 2: its grid stops at the first resolution that has those rings, so no norm
        # of a resolution whose rings are thrown away exists (it would never get a gradient).
        inner = replace(spec, max_res=_grid_cap(spec))
        self.inner = nn.ModuleList(
            _nonlinearity(dims, activation, inner, out, normalization, 1, nonlinearity)
            for _ in range(max(spec.depth - 1, 0))
        )
        self.skip = SpectralSkip(in_channels, out)
        self.nl = _nonlinearity(
            dims, activation, spec, out, normalization, spec.pool_window, nonlinearity
        )

    def forward(self, x_ft: torch.Tensor) -> torch.Tensor:
        if len(self.convs) == 1 and isinstance(self.convs[0], SpectralConv2d):
            # conv + skip in one product (see SpectralConv2d.forward)
            return self.nl(self.convs[0](x_ft, skip=self.skip.weight))
        out = self.skip(x_ft)
        if self.convs:
            h = x_ft
            for i, conv in enumerate(self.convs):
                h = conv(h)
                if i < len(self.inner):
                    h = self.inner[i](h)
            out = out + h
        return self.nl(out)


def _grid_cap(spec: StageSpec) -> int:
    """The smallest resolution of the stage's grid that has every ring its convolutions pass."""
    need = kept_modes(spec.global_modes)
    for r in range(spec.base_res, spec.max_res + 1, spec.increment):
        if kept_modes(r) >= need:
            return r
    return spec.max_res


# Makes a block's nonlinearity from the keywords of ScaleEqNonlinearity (2D, with pool_window)
# or ScaleEqNonlinearity1d: the seam where a researcher swaps in a variant, e.g.
# functools.partial(ScaleEqNonlinearity, impl="loop") or a subclass of their own.
NonlinearityFactory = Callable[..., nn.Module]


def _nonlinearity(
    dims: int,
    activation: Activation,
    spec: StageSpec,
    channels: int,
    normalization: str | None,
    pool_window: int,
    factory: NonlinearityFactory | None = None,
) -> nn.Module:
    kw: dict = dict(
        activation=activation,
        base_res=spec.base_res,
        max_res=spec.max_res,
        channels=channels,
        normalization=normalization,
        increment=spec.increment,
    )
    if dims == 2:
        kw["pool_window"] = pool_window
    if factory is not None:
        return factory(**kw)
    return ScaleEqNonlinearity1d(**kw) if dims == 1 else ScaleEqNonlinearity(**kw)


class FourierClassifier(nn.Module):
    """Stem (optional) -> blocks -> scale-consistent head; input real (B, C, H, W) or (B, C, L).

    ``forward(x)`` returns the logits of the highest available resolution (B, classes);
    ``forward(x, return_all=True)`` a :class:`FourierOutput`. Inputs of any size the
    nonlinearities accept (>= the first grid's base) work; exact equivariance holds between an
    input and its down-scalings to sizes in ``resolution_grid``.
    """

    def __init__(
        self,
        in_channels: int,
        stages: Sequence[StageSpec],
        *,
        num_classes: int = 10,
        hidden: int = 256,
        head_base_res: int,
        head_increment: int = 1,
        head_grid: int,
        head_pool: int,
        dims: int = 2,
        activation: Activation = torch.relu,
        normalization: str | None = "instance",
        dropout_in: float = 0.0,
        dropout_hidden: float = 0.75,
        input_sizes: Sequence[int] | None = None,
        nonlinearity: NonlinearityFactory | None = None,
    ) -> None:
        super().__init__()
        if dims not in (1, 2):
            raise ValueError(f"dims must be 1 or 2, got {dims}")
        if not stages:
            raise ValueError("a model needs at least one stage")
        self.dims = dims
        self.in_channels = in_channels
        blocks, channels = [], in_channels
        for spec in stages:
            blocks.append(
                FourierBlock(
                    channels,
                    spec,
                    dims=dims,
                    activation=activation,
                    normalization=normalization,
                    nonlinearity=nonlinearity,
                )
            )
            channels = spec.out_channels
        self.blocks = nn.ModuleList(blocks)
        self.total_pool = math.prod(s.pool_window for s in stages)
        self.head = ScaleConsistentHead(
            channels,
            hidden,
            num_classes,
            head_base_res,
            increment=head_increment,
            grid_size=head_grid,
            pool_window=head_pool,
            dims=dims,
            dropout_in=dropout_in,
            dropout_hidden=dropout_hidden,
        )
        first = stages[0]
        # Input sizes at which the first nonlinearity's grid sits, hence where the whole network
        # is exactly equivariant (later grids are the first one divided by the pools).
        self.resolution_grid: tuple[int, ...] = tuple(
            range(first.base_res, first.max_res + 1, first.increment)
        )
        self.input_sizes: tuple[int, ...] = tuple(input_sizes or self.resolution_grid)

    def feature_size(self, n: int) -> int:
        """Samples per axis of the final features for an n-sized input: ceil(n / total pool)."""
        return math.ceil(n / self.total_pool)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The final feature spectrum (complex, fft norm "forward") of real inputs."""
        if x.is_complex() or x.dim() != self.dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected real (B, {self.in_channels}{', N' * self.dims}) inputs, "
                f"got {tuple(x.shape)} {x.dtype}"
            )
        dtype = self.head.mlp[0].weight.dtype
        axes = tuple(range(-self.dims, 0))
        h = torch.fft.fftn(x.to(dtype), dim=axes, norm="forward")
        for block in self.blocks:
            h = block(h)
        return h

    def forward(self, x: torch.Tensor, return_all: bool = False) -> torch.Tensor | FourierOutput:
        spectrum = self.features(x)
        per_scale = self.head(spectrum)
        logits = per_scale[:, -1]
        if not return_all:
            return logits
        axes = tuple(range(-self.dims, 0))
        return FourierOutput(
            logits=logits,
            per_scale_logits=per_scale,
            resolutions=tuple(self.head.resolutions(spectrum.shape[-1])),
            features=spectrum,
            feature_map=torch.fft.ifftn(spectrum, dim=axes, norm="forward").real,
        )


def _pooled(spec: StageSpec, pool: int) -> tuple[int, int, int]:
    """(base, max, increment) of the grid after a pool of ``pool``: the grid divided by it."""
    if spec.base_res % pool or spec.increment % pool:
        raise ValueError(
            f"pooling by {pool} needs base_res and increment divisible by it, got {spec}"
        )
    return spec.base_res // pool, math.ceil(spec.max_res / pool), spec.increment // pool


@register_model("fourier_mnist")
def fourier_mnist(
    *,
    width: float = 1.0,
    channels: Sequence[int] = (32, 64, 100, 100),
    in_channels: int = 1,
    num_classes: int = 10,
    hidden: int = 256,
    global_modes: int = 28,
    local_modes: int = 5,
    base_res: int = 6,
    max_res: int = 28,
    head_base_res: int = 8,
    head_pool: int = 14,
    activation: Activation = torch.relu,
    normalization: str | None = "instance",
    dropout_in: float = 0.0,
    dropout_hidden: float = 0.75,
    nonlinearity: NonlinearityFactory | None = None,
) -> FourierClassifier:
    """MNIST-scale model: 4 blocks conv + skip -> NL, G = 28, n = 5, NL base 6, no pooling.

    Head: every resolution 8..N, each crop synthesised on the 28 grid and max-pooled to 2 x 2 per
    channel (400 features at full width) -> 256 -> 10. Inputs 8..28, one channel.
    """
    stages = [
        StageSpec(c, base_res, max_res, global_modes, local_modes).scaled(width) for c in channels
    ]
    return FourierClassifier(
        in_channels,
        stages,
        num_classes=num_classes,
        hidden=hidden,
        head_base_res=head_base_res,
        head_grid=max_res,
        head_pool=head_pool,
        activation=activation,
        normalization=normalization,
        dropout_in=dropout_in,
        dropout_hidden=dropout_hidden,
        nonlinearity=nonlinearity,
        input_sizes=range(8, max_res + 1),
    )


@register_model("fourier_stl")
def fourier_stl(
    *,
    width: float = 1.0,
    channels: Sequence[int] = (32, 128, 256, 512),
    modes: Sequence[tuple[int, int]] = ((64, 7), (32, 5), (16, 5)),
    in_channels: int = 3,
    num_classes: int = 10,
    hidden: int = 256,
    base_res: int = 40,
    max_res: int = 97,
    increment: int = 8,
    pool_window: int = 2,
    head_pool: int = 13,
    activation: Activation = torch.relu,
    normalization: str | None = "instance",
    dropout_in: float = 0.0,
    dropout_hidden: float = 0.75,
    nonlinearity: NonlinearityFactory | None = None,
) -> FourierClassifier:
    """STL10-scale model as published: a projection stem and three depth-2 blocks.

    Stem: 1x1 projection to ``channels[0]`` + NL. Blocks: widths ``channels[1:]``, G / n from
    ``modes``; the first two end in an equivariant max-pool (window 2), so grids go
    40..97 step 8 -> 20..49 step 4 -> 10..25 step 2. Head: crops of the 25-sample features on a
    25 grid, max-pooled with window 13 (2 x 2 per channel, 2048 features) -> 256 -> 10.
    Inputs 49..97, three channels; exactly equivariant at 40, 48, ..., 96.
    """
    if len(channels) != len(modes) + 1:
        raise ValueError("channels needs one entry for the stem plus one per block of modes")
    stages = [StageSpec(channels[0], base_res, max_res, increment=increment, depth=0)]
    base, top, inc = base_res, max_res, increment
    for i, (c, (g, n)) in enumerate(zip(channels[1:], modes, strict=True)):
        pool = pool_window if i < len(modes) - 1 else 1
        stage = StageSpec(c, base, top, g, n, increment=inc, pool_window=pool, depth=2)
        stages.append(stage)
        if pool > 1:
            base, top, inc = _pooled(stage, pool)
    stages = [s.scaled(width) for s in stages]
    return FourierClassifier(
        in_channels,
        stages,
        num_classes=num_classes,
        hidden=hidden,
        head_base_res=base,
        head_increment=inc,
        head_grid=top,
        head_pool=head_pool,
        activation=activation,
        normalization=normalization,
        dropout_in=dropout_in,
        dropout_hidden=dropout_hidden,
        nonlinearity=nonlinearity,
        input_sizes=range(49, max_res + 1),
    )


@register_model("fourier_1d")
def fourier_1d(
    *,
    width: float = 1.0,
    channels: Sequence[int] = (32, 64, 128, 128),
    in_channels: int = 1,
    num_classes: int = 10,
    hidden: int = 256,
    global_modes: int = 128,
    local_modes: int = 17,
    base_res: int = 8,
    max_res: int = 128,
    min_length: int = 16,
    head_pool: int = 32,
    activation: Activation = torch.relu,
    normalization: str | None = "instance",
    dropout_in: float = 0.0,
    dropout_hidden: float = 0.75,
    nonlinearity: NonlinearityFactory | None = None,
) -> FourierClassifier:
    """Signals of lengths 16..128: the MNIST design in 1D.

    Four blocks conv + skip -> NL with G = 128 and a 17-sample kernel (about the same fraction
    of the domain, 13%, as MNIST's 5 / 28 = 18%), NL base 8, no pooling; head on every length
    ``min_length``..L, crops synthesised on 128 samples and max-pooled into 4 cells per channel
    (512 features at full width) -> 256 -> classes.
    """
    stages = [
        StageSpec(c, base_res, max_res, global_modes, local_modes).scaled(width) for c in channels
    ]
    return FourierClassifier(
        in_channels,
        stages,
        num_classes=num_classes,
        hidden=hidden,
        head_base_res=min_length,
        head_grid=max_res,
        head_pool=head_pool,
        dims=1,
        activation=activation,
        normalization=normalization,
        dropout_in=dropout_in,
        dropout_hidden=dropout_hidden,
        nonlinearity=nonlinearity,
        input_sizes=range(min_length, max_res + 1),
    )
