"""The spec-string parser: `parse_distribution` and its tokenizer.

Grammar (whitespace between tokens is ignored; a small recursive-descent parser, never `eval`):

    spec     := law
    law      := NAME "(" [ args ] ")"          | "mixture" "(" term { "," term } ")"
    args     := arg { "," arg }                  (positional arguments before keyword ones)
    arg      := number | NAME "=" number
    term     := number "*" law                   (weights > 0, summing to 1 within 1e-9)
    number   := [ "+" | "-" ] digits [ "." digits ] [ ("e" | "E") [ "+" | "-" ] digits ]

Every number is a Python float (no expressions, no inf or nan). Canonical strings write every
parameter positionally (keyword-only parameters of registered laws as `name=value`) with
`repr(float)`, which round-trips exactly.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import InvalidParameterError
from . import registry
from .base import ScaleLaw
from .mixture import MIXTURE, Mixture


class _SpecError(Exception):
    """A problem in a spec string (turned into InvalidParameterError naming the spec)."""


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "name", one of "(),=*+-", or "end"
    text: str
    column: int  # 1-based

    def describe(self) -> str:
        return "end of spec" if self.kind == "end" else f"{self.text!r}"


_TOKEN = re.compile(
    r"(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>[(),=*+-])"
)


def _tokenize(spec: str) -> Iterator[_Token]:
    i = 0
    while i < len(spec):
        if spec[i].isspace():
            i += 1
            continue
        m = _TOKEN.match(spec, i)
        if m is None:
            raise _SpecError(f"unexpected character {spec[i]!r} at column {i + 1}")
        kind = m.lastgroup or ""
        yield _Token(m.group() if kind == "op" else kind, m.group(), i + 1)
        i = m.end()
    yield _Token("end", "", len(spec) + 1)


class _Parser:
    def __init__(self, spec: str) -> None:
        self.tokens = list(_tokenize(spec))
        self.i = 0

    @property
    def next(self) -> _Token:
        return self.tokens[self.i]

    def take(self, kind: str, what: str) -> _Token:
        token = self.next
        if token.kind != kind:
            raise _SpecError(f"expected {what} at column {token.column}, found {token.describe()}")
        self.i += 1
        return token

    def spec(self) -> ScaleLaw:
        law = self.law()
        if self.next.kind != "end":
            raise _SpecError(
                f"unexpected {self.next.describe()} at column {self.next.column} after the law"
            )
        return law

    def number(self, what: str) -> float:
        sign = 1.0
        if self.next.kind in ("+", "-"):
            sign = -1.0 if self.take(self.next.kind, "a sign").kind == "-" else 1.0
        token = self.take("number", what)
        value = sign * float(token.text)
        if not math.isfinite(value):
            raise _SpecError(f"number {token.text!r} at column {token.column} is not finite")
        return value

    def law(self) -> ScaleLaw:
        name = self.take("name", "a law name")
        entry = registry._REGISTRY.get(name.text)
        if entry is None:
            known = ", ".join(sorted(registry._REGISTRY))
            raise _SpecError(f"unknown law {name.text!r} (known: {known})")
        self.take("(", f"'(' after {name.text!r}")
        if entry.name == MIXTURE:
            return self.mixture()
        args, kwargs = self.arguments(name.text)
        keywords = {
            p.name
            for p in entry.signature.parameters.values()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        }
        unknown = sorted(set(kwargs) - keywords)
        if unknown:
            raise _SpecError(
                f"{entry.name}({', '.join(entry.parameters)}) has no parameter {unknown[0]!r}"
            )
        try:
            bound = entry.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise _SpecError(
                f"wrong arguments for {entry.name}({', '.join(entry.parameters)}): {exc}"
            ) from None
        return entry.make(bound)

    def arguments(self, law: str) -> tuple[list[float], dict[str, float]]:
        args: list[float] = []
        kwargs: dict[str, float] = {}
        if self.next.kind == ")":
            self.i += 1
            return args, kwargs
        while True:
            if self.next.kind == "name" and self.tokens[self.i + 1].kind == "=":
                key = self.take("name", "a parameter name")
                self.take("=", f"'=' after {key.text!r}")
                if key.text in kwargs:
                    raise _SpecError(f"{law}: {key.text!r} given twice (column {key.column})")
                kwargs[key.text] = self.number(f"a number for {key.text!r}")
            else:
                column = self.next.column
                value = self.number("a number or name=number")
                if kwargs:
                    raise _SpecError(
                        f"{law}: positional argument after keyword arguments at column {column}"
                    )
                args.append(value)
            separator = self.next
            if separator.kind == ")":
                self.i += 1
                return args, kwargs
            self.take(",", "',' or ')'")

    def mixture(self) -> ScaleLaw:
        weights: list[float] = []
        components: list[ScaleLaw] = []
        if self.next.kind == ")":
            raise _SpecError(f"{MIXTURE} needs at least one 'w * law' term")
        while True:
            weights.append(self.number("a weight (mixture terms are 'w * law')"))
            self.take("*", "'*' after the weight (mixture terms are 'w * law')")
            components.append(self.law())
            if self.next.kind == ")":
                self.i += 1
                return Mixture(tuple(weights), tuple(components))
            self.take(",", "',' or ')'")


def parse_distribution(spec: str) -> ScaleLaw:
    """The law a spec string names (see the module docstring for the grammar).

    Raises InvalidParameterError with one line `distribution '<spec>': <problem>` for an unknown
    law, wrong arguments, invalid parameters or malformed syntax (with the column).
    """
    if not isinstance(spec, str):
        raise InvalidParameterError(f"distribution spec must be a string, got {spec!r}")
    try:
        return _Parser(spec).spec()
    except (_SpecError, ValueError) as exc:  # InvalidParameterError is a ValueError
        problem = " ".join(str(exc).split()) or type(exc).__name__
        raise InvalidParameterError(f"distribution {spec!r}: {problem}") from None
