"""Preset parameters declared once: each field carries its help, default and allowed range.

A preset's params are a frozen dataclass deriving from `PresetParams` whose fields are made with
`option(...)`. Validation, the canonical JSON recorded in files and the CLI options of
`build <preset>` are all derived from that one declaration, so no option is written twice.
Every preset has `realisations` (the ids to build) and `seed` (the root of its random streams).
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import InvalidParameterError
from ..storage.format import canonical_json

_MISSING = dataclasses.MISSING
# More realisations than any protocol uses by orders of magnitude; a count beyond it is a typo
# (and a plan that would not fit in memory).
MAX_REALISATIONS = 1000
P = TypeVar("P", bound="PresetParams")


def option(
    default: Any,
    help: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A params field: its default, help text and allowed range (inclusive) or choices."""
    return dataclasses.field(
        default=default, metadata={"help": help, "lo": lo, "hi": hi, "choices": choices}
    )


def require(ok: bool, field_name: str, message: str) -> None:
    """Raise InvalidParameterError naming the field unless `ok`."""
    if not ok:
        raise InvalidParameterError(f"{field_name}: {message}")


@dataclass(frozen=True)
class FieldInfo:
    """What the CLI and the docs need to know about one params field."""

    name: str
    kind: type  # int, float, str, bool or tuple (of ints)
    default: Any
    help: str
    lo: float | None
    hi: float | None
    choices: tuple[str, ...] | None

    def describe_range(self) -> str:
        if self.choices:
            return " | ".join(self.choices)
        if self.lo is not None and self.hi is not None:
            return f"{_num(self.lo)}..{_num(self.hi)}"
        if self.lo is not None:
            return f">= {_num(self.lo)}"
        if self.hi is not None:
            return f"<= {_num(self.hi)}"
        return ""


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**63 else str(value)


def _kind(annotation: Any) -> type:
    origin = typing.get_origin(annotation)
    if origin is tuple:
        return tuple
    if annotation in (int, float, str, bool):
        return annotation
    raise TypeError(f"unsupported params field type {annotation!r}")


def fields_of(params_type: type) -> tuple[FieldInfo, ...]:
    """The declared fields of a params dataclass, in declaration order."""
    hints = typing.get_type_hints(params_type)
    out = []
    for f in dataclasses.fields(params_type):
        meta = f.metadata
        out.append(
            FieldInfo(
                name=f.name,
                kind=_kind(hints[f.name]),
                default=f.default,
                help=meta.get("help", ""),
                lo=meta.get("lo"),
                hi=meta.get("hi"),
                choices=meta.get("choices"),
            )
        )
    return tuple(out)


def _check_field(info: FieldInfo, value: Any) -> Any:
    """The value coerced to the field's type, or InvalidParameterError naming the field."""
    allowed = info.describe_range()
    where = f" (allowed: {allowed})" if allowed else ""
    if info.kind is tuple:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise InvalidParameterError(f"{info.name}: must be a list of ints, got {value!r}")
        items = tuple(value)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            raise InvalidParameterError(f"{info.name}: must be a list of ints, got {value!r}")
        for v in items:
            _check_bounds(info, v, where)
        return tuple(int(v) for v in items)
    if info.kind is bool:
        if not isinstance(value, bool):
            raise InvalidParameterError(f"{info.name}: must be true or false, got {value!r}")
        return value
    if info.kind is str:
        if not isinstance(value, str):
            raise InvalidParameterError(f"{info.name}: must be a string, got {value!r}")
        if info.choices and value not in info.choices:
            raise InvalidParameterError(
                f"{info.name}: must be one of {', '.join(info.choices)}, got {value!r}"
            )
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameterError(f"{info.name}: must be a number{where}, got {value!r}")
    if info.kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise InvalidParameterError(f"{info.name}: must be an integer{where}, got {value!r}")
        value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise InvalidParameterError(f"{info.name}: must be finite{where}, got {value!r}")
    _check_bounds(info, value, where)
    return value


def _check_bounds(info: FieldInfo, value: float, where: str) -> None:
    if (info.lo is not None and value < info.lo) or (info.hi is not None and value > info.hi):
        raise InvalidParameterError(f"{info.name}: {value!r} is out of range{where}")


@dataclass(frozen=True)
class PresetParams:
    """Base of every preset's params: the realisation ids and the root seed, then its own."""

    realisations: tuple[int, ...] = option((0,), "Realisation ids to build.", lo=0, hi=2**31 - 1)
    seed: int = option(0, "Root seed of every random stream.", lo=0, hi=2**63 - 1)

    def __post_init__(self) -> None:
        for info in fields_of(type(self)):
            object.__setattr__(self, info.name, _check_field(info, getattr(self, info.name)))
        # Built in any order, the same realisations are the same file.
        object.__setattr__(self, "realisations", tuple(sorted(self.realisations)))
        require(len(self.realisations) > 0, "realisations", "must name at least one id")
        require(
            len(set(self.realisations)) == len(self.realisations),
            "realisations",
            f"ids must be distinct, got {list(self.realisations)}",
        )
        self.check()

    def check(self) -> None:
        """Checks across fields (each field's own range is checked from its declaration)."""

    def to_json(self) -> str:
        return canonical_json(dataclasses.asdict(self))

    @classmethod
    def from_json(cls: type[P], text: str) -> P:
        return cls(**json.loads(text))


def make_params(
    params_type: type[P],
    preset_name: str,
    realisations: int | None = None,
    realisation_ids: tuple[int, ...] | list[int] | None = None,
    **options: Any,
) -> P:
    """Params from user options: `realisations=N` means ids 0..N-1, `realisation_ids` exact ids.

    Options the preset does not have are rejected by name, with the list of those it has.
    """
    accepted = {f.name for f in dataclasses.fields(params_type)}
    unknown = sorted(set(options) - accepted)
    if unknown:
        names = sorted(accepted | {"realisation_ids"})
        raise InvalidParameterError(
            f"{preset_name}: no option {', '.join(unknown)}; options: {', '.join(names)}"
        )
    if realisation_ids:
        options["realisations"] = tuple(realisation_ids)
    elif realisations is not None:
        if isinstance(realisations, bool) or not isinstance(realisations, int):
            raise InvalidParameterError(f"realisations: must be a count, got {realisations!r}")
        require(
            1 <= realisations <= MAX_REALISATIONS,
            "realisations",
            f"must be in 1..{MAX_REALISATIONS}, got {realisations}",
        )
        options["realisations"] = tuple(range(realisations))
    return params_type(**options)
