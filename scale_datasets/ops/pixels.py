"""Pixel conversions shared by the datasets and the transforms."""

from __future__ import annotations

import numpy as np


def to_unit_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels as float32 in [0, 1] (one rounding: x / 255 in float32)."""
    return pixels.astype(np.float32) / np.float32(255)
