"""SESN models for MNIST-Scale and the scale-learning toy model, and their registry entries.

* ``sesn_mnist_scalar``: SESN's "scalar" 28 x 28 model: every block is Z2 -> H, max projection,
  then the CNN template's ReLU / pool / BN; scales 1.7 * 3^(i/3) = 1.7, 2.45, 3.54, 5.1, K = 15,
  basis B (eff 7, mult 1.5, max order 4).
* ``sesn_mnist_vector``: SESN's "vector" model: Z2 -> H, then H -> H blocks that keep the scale
  axis (spatial pooling and 3D batch norm), projected only after the last one; scales
  1.5 * 3^(i/2) = 1.5, 2.6, 4.5, K = 13, basis B with mult 1.5 (SESN's mnist_ses_vector_28).
* ``sesn_mnist_isr`` / ``_spacing`` / ``_direct``: the scalar model with three learnable scales
  per layer (Basting et al. 2024), initialised at sigma_basis 2 and ISR 3 (scales 2, 3.46, 6),
  the kernel size following the largest scale (``l = 2 k sigma_max + 1``, k = 1.25, at most 21).
* ``sesn_toy``: Basting's Table 1 model for Dynamic Scale MNIST (168 x 168 canvases): Z2 -> H
  with 16 filters and N_S = 3 learnable (ISR) scales, projection, BN, ReLU, a 42 x 42 max-pool
  and one fully-connected layer (softmax is the loss's).

All MNIST models share the CNN template (:mod:`scale_eq.baselines`) and have 494,549 weights
(the learnable ones add 2 or 3 scale parameters per layer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from torch import nn

from ..baselines import MNIST_CHANNELS, MnistTemplate, pool
from ..registry import register_model
from .hermite import BasisSpec
from .layers import ScaleMaxProjection, SESConvHH, SESConvZ2H
from .scales import InternalScales, Parameterisation, ScaleSpec

__all__ = [
    "sesn_mnist",
    "sesn_mnist_direct",
    "sesn_mnist_isr",
    "sesn_mnist_isr_basting",
    "sesn_mnist_scalar",
    "sesn_mnist_spacing",
    "sesn_mnist_vector",
    "sesn_toy",
]

BASIS_SCALAR = BasisSpec("B", effective_size=7, mult=1.5, max_order=4)
BASIS_TOY = BasisSpec("A", effective_size=5)  # Basting's Table 1 toy

# Basting et al.'s init of the learnable scales, the keywords' defaults of sesn_mnist_isr /
# _spacing / _direct and sesn_toy: sigma_basis 2, ISR 3, three scales (2, 3.46, 6) and
# K = 2 ceil(1.25 sigma_max) + 1 <= 21
_SIGMA_BASIS, _ISR, _NUM_SCALES, _KERNEL_FACTOR, _MAX_KERNEL_SIZE = 2.0, 3.0, 3, 1.25, 21


def sesn_mnist(
    scales: ScaleSpec,
    basis: BasisSpec = BASIS_SCALAR,
    *,
    vector: bool = False,
    shared_scales: bool = False,
    intermediate_relu: bool = True,
    upsample: int = 1,
    channels: Sequence[int] = MNIST_CHANNELS,
    in_channels: int = 1,
    num_classes: int = 10,
    dropout: float = 0.7,
) -> MnistTemplate:
    """The MNIST template with scale convolutions.

    Scalar: ``Z2->H -> project -> ReLU -> pool -> BN`` per block. Vector: the first two blocks
    keep the scale axis (``-> ReLU -> 3D pool -> BN3d``, the next block H -> H), the last one
    projects before its ReLU. Each layer gets its own scales from the one spec, or, with
    ``shared_scales``, all layers use one `InternalScales` module (one set of parameters).
    ``intermediate_relu=False`` drops the ReLU of every block but the last (Basting's model);
    ``upsample`` > 1 first enlarges the input by that factor (nearest), as the 56 x 56 models do.
    """
    layers: list[nn.Module] = []
    if upsample > 1:
        layers.append(nn.Upsample(scale_factor=upsample, mode="nearest"))
    shared = InternalScales(scales) if shared_scales else None
    cin = in_channels
    last = len(channels) - 1
    for i, c in enumerate(channels):
        on_group = vector and i > 0
        own = shared if shared is not None else scales
        conv = SESConvHH(cin, c, own, basis) if on_group else SESConvZ2H(cin, c, own, basis)
        relu = [nn.ReLU(inplace=True)] if intermediate_relu or i == last else []
        if vector and i < last:
            layers += [conv, *relu, _pool3d(i), nn.BatchNorm3d(c)]
        else:
            layers += [conv, ScaleMaxProjection(), *relu, pool(i), nn.BatchNorm2d(c)]
        cin = c
    return MnistTemplate(nn.Sequential(*layers), cin, num_classes, dropout)


class _Pool3d(nn.Module):
    """The template's 2D pooling applied at every scale of (B, C, S, H, W)."""

    def __init__(self, pool2d: nn.MaxPool2d) -> None:
        super().__init__()
        self.pool2d = pool2d

    def forward(self, x):  # type: ignore[no-untyped-def]
        b, c, s, h, w = x.shape
        y = self.pool2d(x.reshape(b, c * s, h, w))
        return y.view(b, c, s, *y.shape[-2:])


def _pool3d(block: int) -> _Pool3d:
    return _Pool3d(pool(block))


def _rounded(spec: ScaleSpec) -> ScaleSpec:
    """SESN rounds its scales to two decimals."""
    return replace(spec, init=tuple(round(s, 2) for s in spec.init))


@register_model("sesn_mnist_scalar")
def sesn_mnist_scalar(**kwargs: object) -> MnistTemplate:
    """SESN scalar, 28 x 28: scales 1.7, 2.45, 3.54, 5.1; K = 15; basis B (mult 1.5)."""
    spec = _rounded(ScaleSpec.geometric(1.7, 3.0, 4, kernel_size=15))
    return sesn_mnist(spec, BASIS_SCALAR, **kwargs)  # type: ignore[arg-type]


@register_model("sesn_mnist_vector")
def sesn_mnist_vector(**kwargs: object) -> MnistTemplate:
    """SESN vector, 28 x 28: scales 1.5, 2.6, 4.5; K = 13; basis B (mult 1.5)."""
    spec = _rounded(ScaleSpec.geometric(1.5, 3.0, 3, kernel_size=13))
    return sesn_mnist(spec, BASIS_SCALAR, vector=True, **kwargs)  # type: ignore[arg-type]


def _learnable_spec(
    learn: Parameterisation,
    sigma_basis: float,
    isr: float,
    num_scales: int,
    kernel_factor: float,
    max_kernel_size: int,
) -> ScaleSpec:
    """Geometric init scales learned as ``learn``, K following the largest one."""
    return ScaleSpec.geometric(
        sigma_basis,
        isr,
        num_scales,
        learn=learn,
        kernel_factor=kernel_factor,
        max_kernel_size=max_kernel_size,
    )


def _learnable(learn: Parameterisation, summary: str) -> Callable[..., MnistTemplate]:
    """A factory of the scalar model with ``learn`` scales (the three differ only in that)."""

    def factory(
        *,
        sigma_basis: float = _SIGMA_BASIS,
        isr: float = _ISR,
        num_scales: int = _NUM_SCALES,
        kernel_factor: float = _KERNEL_FACTOR,
        max_kernel_size: int = _MAX_KERNEL_SIZE,
        **kwargs: object,
    ) -> MnistTemplate:
        spec = _learnable_spec(learn, sigma_basis, isr, num_scales, kernel_factor, max_kernel_size)
        return sesn_mnist(spec, BASIS_SCALAR, **kwargs)  # type: ignore[arg-type]

    factory.__name__ = factory.__qualname__ = f"sesn_mnist_{learn}"
    factory.__doc__ = (
        f"Scalar SESN with {summary}; init sigma_basis 2, ISR 3 (scales 2, 3.46, 6), "
        "K = 2 ceil(1.25 sigma_max) + 1 <= 21. Keywords override these and reach sesn_mnist."
    )
    return factory


sesn_mnist_isr = register_model("sesn_mnist_isr")(
    _learnable("isr", "learned sigma_basis and ISR = 1 + gamma^2 per layer")
)
sesn_mnist_spacing = register_model("sesn_mnist_spacing")(
    _learnable("spacing", "a learned first scale and learned positive spacings per layer")
)
sesn_mnist_direct = register_model("sesn_mnist_direct")(
    _learnable("direct", "every scale of every layer learned directly")
)

# Basting et al.'s MNIST-Scale model (the one behind "learnable ISR 1.72 +- 0.05"): basis B
# with mult 1.4; the trainer gives its scales lr 0.005 (the leaderboard's mnist-scale recipe).
BASIS_BASTING = BasisSpec("B", effective_size=7, mult=1.4, max_order=4)
BASTING_SCALE_LR = 0.005


@register_model("sesn_mnist_isr_basting")
def sesn_mnist_isr_basting(
    *,
    sigma_basis: float = 1.5,
    isr: float = 2.0,
    num_scales: int = 4,
    kernel_factor: float = 4.0,
    max_kernel_size: int = 99,
    **kwargs: object,
) -> MnistTemplate:
    """Basting et al.'s MNIST-Scale model: ONE set of ISR scales shared by all layers (init
    sigma_basis 1.5, ISR 2, 4 scales: 1.5, 1.89, 2.38, 3), basis B (eff 7, mult 1.4),
    K = 2 ceil(4 sigma_max) + 1 (25 at init), the input up-sampled x2 (nearest), no ReLU after
    the intermediate blocks; 494,551 parameters. Train its scales at lr 0.005."""
    spec = _learnable_spec("isr", sigma_basis, isr, num_scales, kernel_factor, max_kernel_size)
    options = {"shared_scales": True, "intermediate_relu": False, "upsample": 2, **kwargs}
    return sesn_mnist(spec, BASIS_BASTING, **options)  # type: ignore[arg-type]


class SESNToy(nn.Module):
    """Z2 -> H (Hermite, N_S scales) -> projection -> BN -> ReLU -> max-pool -> FC."""

    def __init__(
        self,
        scales: ScaleSpec,
        basis: BasisSpec,
        *,
        filters: int,
        pool_size: int,
        canvas: int,
        in_channels: int,
        num_classes: int,
    ) -> None:
        super().__init__()
        cells = -(-canvas // pool_size)  # ceil_mode pooling
        self.features = nn.Sequential(
            SESConvZ2H(in_channels, filters, scales, basis),
            ScaleMaxProjection(),
            nn.BatchNorm2d(filters),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(pool_size, ceil_mode=True),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(filters * cells * cells, num_classes))

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.head(self.features(x))


@register_model("sesn_toy")
def sesn_toy(
    *,
    learn: Parameterisation = "isr",
    sigma_basis: float = _SIGMA_BASIS,
    isr: float = _ISR,
    num_scales: int = _NUM_SCALES,
    filters: int = 16,
    pool_size: int = 42,
    canvas: int = 168,
    kernel_factor: float = 4.0,
    max_kernel_size: int = 99,
    basis: BasisSpec = BASIS_TOY,
    in_channels: int = 1,
    num_classes: int = 10,
) -> SESNToy:
    """Basting et al.'s Table 1 model for Dynamic Scale MNIST (168 x 168 inputs): basis A with
    eff 5 (25 functions), N_S 3 ISR scales from sigma_basis 2 and ISR 3, 16 filters,
    K = 2 ceil(4 sigma_max) + 1 = 49 at init (the tie rule of `ScaleSpec.kernel_size_for`)."""
    spec = _learnable_spec(learn, sigma_basis, isr, num_scales, kernel_factor, max_kernel_size)
    return SESNToy(
        spec,
        basis,
        filters=filters,
        pool_size=pool_size,
        canvas=canvas,
        in_channels=in_channels,
        num_classes=num_classes,
    )
