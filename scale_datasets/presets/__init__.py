"""One module per protocol; importing this package registers them all."""

from . import mnist_scale
from .base import Plan, Preset, SplitPlan, get_preset, list_presets

__all__ = ["Plan", "Preset", "SplitPlan", "get_preset", "list_presets", "mnist_scale"]
