"""Fourier scale-equivariant layers and models (Rahman & Yeh, NeurIPS 2023), done exactly.

Every tensor between layers is the full DFT (norm "forward") of a real feature map; ideal
down-scaling D_r (``scale_datasets.ops.fourier``) commutes with every layer on its resolution grid.
"""

from .head import ScaleConsistentHead, consistency_loss, head_resolutions
from .models import (
    FourierBlock,
    FourierClassifier,
    FourierOutput,
    StageSpec,
    fourier_1d,
    fourier_mnist,
    fourier_stl,
)
from .nonlinearity import ScaleEqNonlinearity, ScaleEqNonlinearity1d
from .spectral_conv import (
    SpectralConv1d,
    SpectralConv2d,
    SpectralConvBlock1d,
    SpectralConvBlock2d,
    SpectralSkip,
)

__all__ = [
    "FourierBlock",
    "FourierClassifier",
    "FourierOutput",
    "ScaleConsistentHead",
    "ScaleEqNonlinearity",
    "ScaleEqNonlinearity1d",
    "SpectralConv1d",
    "SpectralConv2d",
    "SpectralConvBlock1d",
    "SpectralConvBlock2d",
    "SpectralSkip",
    "StageSpec",
    "consistency_loss",
    "fourier_1d",
    "fourier_mnist",
    "fourier_stl",
    "head_resolutions",
]
