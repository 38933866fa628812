"""Keyed random streams: every random decision of a build comes from one of these.

A stream is identified by (root seed, realisation, purpose code), so realisation k drawn alone is
the same as realisation k drawn among others, and adding a new purpose never shifts existing
draws. Each preset declares its own purposes (name -> integer code) in a `Streams` table; files
record the table as seed material, so codes of a released preset are never renumbered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .errors import InvalidParameterError


def keyed_generator(*key: int) -> np.random.Generator:
    """A PCG64 generator seeded by SeedSequence over non-negative integer key material."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(key))))


@dataclass(frozen=True)
class Streams:
    """One preset's random purposes and their stable integer codes."""

    purposes: Mapping[str, int]

    def __post_init__(self) -> None:
        codes = list(self.purposes.values())
        if len(set(codes)) != len(codes) or any(c < 0 for c in codes):
            raise ValueError(f"purpose codes must be distinct and >= 0: {dict(self.purposes)}")

    def stream(self, root_seed: int, realisation: int, purpose: str) -> np.random.Generator:
        """The generator for one purpose of one realisation."""
        if purpose not in self.purposes:
            raise InvalidParameterError(f"unknown random stream purpose {purpose!r}")
        if root_seed < 0 or realisation < 0:
            raise InvalidParameterError("seed and realisation must be >= 0")
        return keyed_generator(root_seed, realisation, self.purposes[purpose])

    def seed_material(self, root_seed: int, realisation: int) -> dict[str, object]:
        """What a file records so anyone can recreate the streams of a realisation."""
        return {
            "bit_generator": "PCG64",
            "seed_sequence": [root_seed, realisation, "<purpose>"],
            "purposes": dict(self.purposes),
        }
