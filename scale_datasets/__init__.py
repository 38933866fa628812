"""scale-datasets: deterministic, verified scale-equivariance benchmarks.

Names that need torch (the Dataset classes and transforms) load on first use, so worker
processes and the CLI's non-training commands start without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import (
    IntegrityError,
    InvalidParameterError,
    OutputExistsError,
    ScaleDatasetsError,
    SourceCorruptError,
    SourceNotFoundError,
)

__version__ = "0.1.0"

_LAZY = {
    "build": ".build",
    "merge": ".build",
    "verify_file": ".storage.verify",
    "read_info": ".storage.reader",
    "ScaleDataset": ".datasets",
    "MNISTScale": ".datasets",
    "ResolutionBatchSampler": ".samplers",
    "MNIST_SCALE_MEAN": ".presets.mnist_scale",
    "MNIST_SCALE_STD": ".presets.mnist_scale",
    "MNIST_MULTIRES_MEAN": ".presets.mnist_multires",
    "MNIST_MULTIRES_STD": ".presets.mnist_multires",
    "STL10_SCALE_MEAN": ".presets.stl10_scale",
    "STL10_SCALE_STD": ".presets.stl10_scale",
    "RandomScale": ".transforms",
    "RandomCircularShift": ".transforms",
    "stl10_train_transforms": ".transforms",
    "list_presets": ".presets",
    "register_distribution": ".distributions",
    "parse_distribution": ".distributions",
    "list_distributions": ".distributions",
}

__all__ = [
    "IntegrityError",
    "InvalidParameterError",
    "OutputExistsError",
    "ScaleDatasetsError",
    "SourceCorruptError",
    "SourceNotFoundError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'scale_datasets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
