"""One module per protocol; importing this package registers them all."""

from . import dynamic_mnist, mnist_multires, mnist_scale, stl10_scale
from .base import Plan, Preset, RenderSpec, SplitPlan, get_preset, list_presets

__all__ = [
    "Plan",
    "Preset",
    "RenderSpec",
    "SplitPlan",
    "dynamic_mnist",
    "get_preset",
    "list_presets",
    "mnist_multires",
    "mnist_scale",
    "stl10_scale",
]
