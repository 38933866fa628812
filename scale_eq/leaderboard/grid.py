"""The grid of runs (model x realisation x seed) and each process's share of it.

A run is named by its recipe, model, realisation and seed plus a digest of everything that
changes its result (the recipe's fields, the model's options, the data file's content hash, the
precision), so records and checkpoints of different configurations never mix. The share of a
process is ``grid[k::n]`` for its global index k of n: torchrun ranks (``RANK``,
``WORLD_SIZE``) inside ``--shard i/N`` jobs, so ranks and shards are disjoint and together
cover the grid.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from scale_datasets.errors import InvalidParameterError
from scale_datasets.shards import Shard

from .recipes import Recipe

__all__ = ["Placement", "RunSpec", "expand_grid", "parse_ids", "placement", "share"]

_RANGE = re.compile(r"^(\d+)-(\d+)$")


def parse_ids(text: str, name: str) -> tuple[int, ...]:
    """``"0-2"``, ``"0,3,5"`` or ``"0-1,4"`` as sorted distinct ints >= 0 (one-line error)."""
    out: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        match = _RANGE.match(part)
        if match:
            lo, hi = int(match.group(1)), int(match.group(2))
            if lo > hi:
                raise InvalidParameterError(f"{name}: range {part!r} is empty (need lo <= hi)")
            out.update(range(lo, hi + 1))
        elif part.isdecimal():  # isdigit() also admits '²', which int() rejects
            out.add(int(part))
        else:
            raise InvalidParameterError(f"{name}: {text!r} is not a list of ids like 0-2 or 0,3,5")
    return tuple(sorted(out))


@dataclass(frozen=True)
class RunSpec:
    """One run of the grid. ``model`` is a registry name or a user's ``module:function``."""

    recipe: Recipe
    model: str
    realisation: int
    seed: int
    data_sha256: str
    precision: str = "fp32"
    replicas: int = 1  # ranks of a data-parallel (--ddp) run

    def config(self) -> dict[str, Any]:
        """What the run's result depends on (besides the code)."""
        return {
            "recipe": self.recipe.to_json(),
            "model": self.model,
            "model_options": self.recipe.options_for(self.model),
            "realisation": self.realisation,
            "seed": self.seed,
            "data_sha256": self.data_sha256,
            "precision": self.precision,
            "replicas": self.replicas,
        }

    @property
    def config_sha256(self) -> str:
        blob = json.dumps(self.config(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()

    @property
    def run_id(self) -> str:
        model = re.sub(r"[^A-Za-z0-9_.-]", "_", self.model)
        return (
            f"{self.recipe.name}.{model}.r{self.realisation}.s{self.seed}.{self.config_sha256[:10]}"
        )


def expand_grid(
    recipe: Recipe,
    models: tuple[str, ...],
    realisations: tuple[int, ...],
    seeds: tuple[int, ...],
    data_sha256: str,
    precision: str = "fp32",
    replicas: int = 1,
) -> list[RunSpec]:
    """Every (model, realisation, seed), model-major, in a fixed order."""
    return [
        RunSpec(recipe, m, r, s, data_sha256, precision, replicas)
        for m in models
        for r in realisations
        for s in seeds
    ]


@dataclass(frozen=True)
class Placement:
    """Where this process sits: its global index of ``count`` grid shares, and its torchrun
    rank / world size / local rank (0 / 1 / 0 outside torchrun)."""

    index: int
    count: int
    rank: int
    world_size: int
    local_rank: int


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidParameterError(f"{name}: must be an integer, got {value!r}") from None


def placement(shard: str | None, ddp: bool = False) -> Placement:
    """This process's share: torchrun's ``RANK``/``WORLD_SIZE`` inside ``--shard i/N``; with
    ``ddp`` every rank takes the shard's whole share (the ranks train each run together)."""
    rank, world = _env_int("RANK", 0), _env_int("WORLD_SIZE", 1)
    if world < 1 or not 0 <= rank < world:
        raise InvalidParameterError(
            f"RANK/WORLD_SIZE: need 0 <= RANK < WORLD_SIZE, got {rank}/{world}"
        )
    parsed = Shard.parse(shard) if shard else Shard(1, 1)
    ranks = 1 if ddp else world
    return Placement(
        index=(parsed.index - 1) * ranks + (0 if ddp else rank),
        count=parsed.count * ranks,
        rank=rank,
        world_size=world,
        local_rank=_env_int("LOCAL_RANK", 0),
    )


def share(grid: list[RunSpec], where: Placement) -> list[RunSpec]:
    """The runs of this process: every ``count``-th run from its ``index``."""
    return grid[where.index :: where.count]
