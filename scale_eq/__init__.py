"""Reference scale-equivariant models: build by name, or use the layers directly.

    import scale_eq
    model = scale_eq.create_model("fourier_mnist", width=0.5)
    scale_eq.list_models()  # ['fourier_1d', 'fourier_mnist', 'fourier_stl', ...]

Layers, heads and metrics are re-exported lazily (``scale_eq.SpectralConv2d``,
``scale_eq.equivariance_error``, ...), so ``import scale_eq`` itself stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .registry import create_model, list_models, register_model

_LAZY = {
    "SpectralConv1d": "scale_eq.fourier.spectral_conv",
    "SpectralConv2d": "scale_eq.fourier.spectral_conv",
    "SpectralConvBlock1d": "scale_eq.fourier.spectral_conv",
    "SpectralConvBlock2d": "scale_eq.fourier.spectral_conv",
    "SpectralSkip": "scale_eq.fourier.spectral_conv",
    "ScaleConsistentHead": "scale_eq.fourier.head",
    "consistency_loss": "scale_eq.fourier.head",
    "ScaleEqNonlinearity": "scale_eq.fourier.nonlinearity",
    "ScaleEqNonlinearity1d": "scale_eq.fourier.nonlinearity",
    "FourierClassifier": "scale_eq.fourier.models",
    "FourierOutput": "scale_eq.fourier.models",
    "EquivarianceReport": "scale_eq.metrics",
    "accuracy_per_resolution": "scale_eq.metrics",
    "equivariance_error": "scale_eq.metrics",
    "final_features": "scale_eq.metrics",
    "scale_consistency": "scale_eq.metrics",
}

__all__ = [
    "EquivarianceReport",
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
    "accuracy_per_resolution",
    "consistency_loss",
    "create_model",
    "equivariance_error",
    "final_features",
    "list_models",
    "register_model",
    "scale_consistency",
]

if TYPE_CHECKING:
    from .fourier.head import ScaleConsistentHead, consistency_loss
    from .fourier.models import FourierClassifier, FourierOutput
    from .fourier.nonlinearity import ScaleEqNonlinearity, ScaleEqNonlinearity1d
    from .fourier.spectral_conv import (
        SpectralConv1d,
        SpectralConv2d,
        SpectralConvBlock1d,
        SpectralConvBlock2d,
        SpectralSkip,
    )
    from .metrics import (
        EquivarianceReport,
        accuracy_per_resolution,
        equivariance_error,
        final_features,
        scale_consistency,
    )


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
