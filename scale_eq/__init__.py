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
    "ScaleAccuracy": "scale_eq.metrics",
    "accuracy_per_resolution": "scale_eq.metrics",
    "accuracy_per_scale": "scale_eq.metrics",
    "equivariance_error": "scale_eq.metrics",
    "final_features": "scale_eq.metrics",
    "scale_consistency": "scale_eq.metrics",
    "scale_group_equivariance_error": "scale_eq.metrics",
    "SESConvZ2H": "scale_eq.sesn.layers",
    "SESConvHH": "scale_eq.sesn.layers",
    "SESConvHH1x1": "scale_eq.sesn.layers",
    "ScaleMaxProjection": "scale_eq.sesn.layers",
    "InternalScales": "scale_eq.sesn.scales",
    "ScaleSpec": "scale_eq.sesn.scales",
    "parameter_groups": "scale_eq.sesn.scales",
    "scale_parameters": "scale_eq.sesn.scales",
}

__all__ = [
    "EquivarianceReport",
    "FourierClassifier",
    "FourierOutput",
    "InternalScales",
    "SESConvHH",
    "SESConvHH1x1",
    "SESConvZ2H",
    "ScaleAccuracy",
    "ScaleConsistentHead",
    "ScaleEqNonlinearity",
    "ScaleEqNonlinearity1d",
    "ScaleMaxProjection",
    "ScaleSpec",
    "SpectralConv1d",
    "SpectralConv2d",
    "SpectralConvBlock1d",
    "SpectralConvBlock2d",
    "SpectralSkip",
    "accuracy_per_resolution",
    "accuracy_per_scale",
    "consistency_loss",
    "create_model",
    "equivariance_error",
    "final_features",
    "list_models",
    "parameter_groups",
    "register_model",
    "scale_consistency",
    "scale_group_equivariance_error",
    "scale_parameters",
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
        ScaleAccuracy,
        accuracy_per_resolution,
        accuracy_per_scale,
        equivariance_error,
        final_features,
        scale_consistency,
        scale_group_equivariance_error,
    )
    from .sesn.layers import ScaleMaxProjection, SESConvHH, SESConvHH1x1, SESConvZ2H
    from .sesn.scales import InternalScales, ScaleSpec, parameter_groups, scale_parameters


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
