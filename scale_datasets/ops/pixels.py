"""Pixel conversions shared by the datasets, the transforms and the builder."""

from __future__ import annotations

from typing import Any

import numpy as np


def to_unit_float(pixels: Any) -> Any:
    """uint8 pixels as float32 in [0, 1] (one rounding: x / 255 in float32).

    A numpy array gives a numpy array; a torch tensor gives a tensor on its own device.
    """
    if isinstance(pixels, np.ndarray):
        return pixels.astype(np.float32) / np.float32(255)
    import torch

    return pixels.to(torch.float32, copy=True).div_(255)  # in place: one allocation, same bits
