"""One module per protocol; importing this package registers them all."""

from . import (
    dynamic_mnist,
    mnist_large_scale,
    mnist_multires,
    mnist_scale,
    signals_1d,
    stl10_scale,
)
from .base import Plan, Preset, RenderSpec, SplitPlan, find_preset, get_preset, list_presets

__all__ = [
    "Plan",
    "Preset",
    "RenderSpec",
    "SplitPlan",
    "dynamic_mnist",
    "find_preset",
    "get_preset",
    "list_presets",
    "mnist_large_scale",
    "mnist_multires",
    "mnist_scale",
    "signals_1d",
    "stl10_scale",
]
