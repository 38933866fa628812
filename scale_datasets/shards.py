"""Shard specs ("i/n", 1-based) and the rows each shard renders."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidParameterError

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise InvalidParameterError(
                f"shard: {self.index}/{self.count} is not a valid shard; use i/n with 1 <= i <= n"
            )

    @classmethod
    def parse(cls, spec: str) -> Shard:
        match = _SPEC.match(spec)
        if not match:
            raise InvalidParameterError(f"shard: {spec!r} is not of the form i/n (e.g. 1/3)")
        return cls(int(match.group(1)), int(match.group(2)))

    def rows(self, n: int) -> tuple[int, int]:
        """The contiguous block [lo, hi) of n rows that this shard owns."""
        return n * (self.index - 1) // self.count, n * self.index // self.count

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
