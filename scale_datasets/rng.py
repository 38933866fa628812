"""Keyed random streams: every random decision of a build comes from one of these.

A stream is identified by (root seed, realisation, purpose), so realisation k drawn alone is the
same as realisation k drawn among others, and adding a new purpose never shifts existing draws.
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidParameterError

# Stable integer codes for each kind of draw. Never renumber: files record them as seed material.
PURPOSES: dict[str, int] = {
    "split": 1,
    "scales/train": 2,
    "scales/val": 3,
    "scales/test": 4,
}


def stream(root_seed: int, realisation: int, purpose: str) -> np.random.Generator:
    """The generator for one purpose of one realisation."""
    if purpose not in PURPOSES:
        raise InvalidParameterError(f"unknown random stream purpose {purpose!r}")
    if root_seed < 0 or realisation < 0:
        raise InvalidParameterError("seed and realisation must be >= 0")
    seq = np.random.SeedSequence([root_seed, realisation, PURPOSES[purpose]])
    return np.random.Generator(np.random.PCG64(seq))


def seed_material(root_seed: int, realisation: int) -> dict[str, object]:
    """What a file records so anyone can recreate the streams of a realisation."""
    return {
        "bit_generator": "PCG64",
        "seed_sequence": [root_seed, realisation, "<purpose>"],
        "purposes": dict(PURPOSES),
    }
