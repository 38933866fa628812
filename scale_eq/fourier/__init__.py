"""Fourier scale-equivariant layers and models (Rahman & Yeh, NeurIPS 2023), done exactly.

Every tensor between layers is the full DFT (norm "forward") of a real feature map; ideal
down-scaling D_r (``scale_datasets.ops.fourier``) commutes with every layer on its resolution grid.
Names are imported on first use, so importing one layer does not build the others' modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "SpectralConv1d": "spectral_conv",
    "SpectralConv2d": "spectral_conv",
    "SpectralConvBlock1d": "spectral_conv",
    "SpectralConvBlock2d": "spectral_conv",
    "SpectralSkip": "spectral_conv",
    "ScaleConsistentHead": "head",
    "consistency_loss": "head",
    "head_resolutions": "head",
    "ScaleEqNonlinearity": "nonlinearity",
    "ScaleEqNonlinearity1d": "nonlinearity",
    "FourierBlock": "models",
    "FourierClassifier": "models",
    "FourierOutput": "models",
    "StageSpec": "models",
    "fourier_1d": "models",
    "fourier_mnist": "models",
    "fourier_stl": "models",
}

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

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
