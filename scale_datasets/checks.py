"""Argument checks shared by the library's classes: one-line errors naming the argument."""

from __future__ import annotations

import numpy as np

from .errors import InvalidParameterError


def int_at_least(name: str, value: object, minimum: int) -> int:
    """`value` as an int >= `minimum` (bools refused), or InvalidParameterError naming `name`."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise InvalidParameterError(f"{name}: need an int >= {minimum}, got {value!r}")
    return int(value)
