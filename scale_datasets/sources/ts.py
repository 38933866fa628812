"""The UCR/UEA archive's `.ts` text format: `read_ts` decodes one file.

Header lines (`@problemName`, `@univariate`, `@equalLength`, `@seriesLength`, `@classLabel true
<labels>` ...), then `@data` and one series per line, channels separated by `:`, values by `,`,
the class label after the last `:`. The reader checks the header against the data and names the
file and line of the first fault.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from scale_datasets.errors import InvalidParameterError, SourceCorruptError

log = logging.getLogger(__name__)

FILL_MISSING_MODES: tuple[str, ...] = ("zero", "linear")
_BOOLEAN_FIELDS = ("timestamps", "missing", "univariate", "equallength", "targetlabel")
_COUNT_FIELDS = ("serieslength", "dimensions")
_COMMENT = ("#", "%")  # the archive's files use both (ARFF's is %)
_KNOWN_FIELDS = (*_BOOLEAN_FIELDS, *_COUNT_FIELDS, "problemname", "classlabel")


class SeriesShape:
    """`channels` and `lengths` of a `series` tuple of float64 (C, L_i) arrays."""

    series: tuple[np.ndarray, ...]

    @property
    def channels(self) -> int:
        return int(self.series[0].shape[0])

    @property
    def lengths(self) -> np.ndarray:
        return np.array([s.shape[1] for s in self.series], dtype=np.int64)


@dataclass(frozen=True, eq=False)  # eq on numpy fields would raise; compare the sha256 instead
class TsFile(SeriesShape):
    """One decoded `.ts` file: its header, class names and series with their labels."""

    path: Path
    problem_name: str
    header: Mapping[str, str]  # lower-cased keyword (without `@`) -> its text as written
    class_names: tuple[str, ...]  # in the order @classLabel declares them
    series: tuple[np.ndarray, ...]  # float64 (C, L_i) each, read-only
    labels: np.ndarray  # int64 (N,) indices into class_names, read-only
    line_numbers: tuple[int, ...]  # the line each series was read from
    n_filled: int  # missing values filled (0 unless fill_missing was given)


@dataclass(frozen=True)
class _Header:
    fields: Mapping[str, str]
    class_names: tuple[str, ...]
    data_line: int  # the line of @data; the series follow it

    def flag(self, name: str) -> bool | None:
        value = self.fields.get(name)
        return None if value is None else value.lower() == "true"

    def count(self, name: str) -> int | None:
        value = self.fields.get(name)
        return None if value is None else int(value)


def _check_field(where: str, key: str, value: str) -> None:
    if key in _BOOLEAN_FIELDS and value.lower() not in ("true", "false"):
        raise SourceCorruptError(f"{where}: @{key} must be true or false, got {value!r}")
    if key in _COUNT_FIELDS and not (value.isdigit() and int(value) > 0):
        raise SourceCorruptError(f"{where}: @{key} must be a positive integer, got {value!r}")


def _read_header(path: Path, lines: list[str]) -> _Header:
    """The header fields up to @data, with the refusals of what this reader does not support."""
    fields: dict[str, str] = {}
    field_lines: dict[str, int] = {}
    data_line = 0
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith(_COMMENT):
            continue
        where = f"{path}:{number}"
        if not line.startswith("@"):
            raise SourceCorruptError(f"{where}: a data line before @data (no @data line?)")
        keyword, *words = line[1:].split()
        key, value = keyword.lower(), " ".join(words)
        if key == "data":
            data_line = number
            break
        _check_field(where, key, value)
        fold = str.lower if key in _BOOLEAN_FIELDS else str
        if key in fields and fold(fields[key]) != fold(value):
            raise SourceCorruptError(
                f"{where}: @{keyword} {value} contradicts line {field_lines[key]} "
                f"(@{keyword} {fields[key]})"
            )
        if key not in _KNOWN_FIELDS:
            log.debug("%s: ignoring header field @%s", where, keyword)
        if key not in fields:
            fields[key], field_lines[key] = value, number
    else:
        raise SourceCorruptError(f"{path}:{max(len(lines), 1)}: no @data line (truncated?)")
    where = f"{path}:{data_line}"
    if fields.get("timestamps", "false").lower() == "true":
        raise SourceCorruptError(
            f"{path}:{field_lines['timestamps']}: time-stamped series (@timeStamps true) "
            "are not supported"
        )
    if fields.get("targetlabel", "false").lower() == "true":
        raise SourceCorruptError(
            f"{path}:{field_lines['targetlabel']}: regression problems (@targetLabel true) are not "
            "supported, only classification"
        )
    if "problemname" not in fields or not fields["problemname"]:
        raise SourceCorruptError(f"{where}: no @problemName in the header before @data")
    if "classlabel" not in fields:
        raise SourceCorruptError(f"{where}: no @classLabel in the header before @data")
    flag, *names = fields["classlabel"].split() or [""]
    where = f"{path}:{field_lines['classlabel']}"
    if flag.lower() == "false":
        raise SourceCorruptError(
            f"{where}: problems without class labels (@classLabel false, regression) are not "
            "supported, only classification"
        )
    if flag.lower() != "true" or not names:
        raise SourceCorruptError(f"{where}: @classLabel must be `true` followed by the labels")
    if len(set(names)) != len(names):
        raise SourceCorruptError(f"{where}: @classLabel declares a label twice")
    return _Header(MappingProxyType(fields), tuple(names), data_line)


def _decode(where: str, body: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The (C, L) values of one series' text, and where `?` stood (None when nowhere)."""
    if not body.strip():
        raise SourceCorruptError(f"{where}: the series has no values before its label")
    channels = [chunk.split(",") for chunk in body.split(":")]
    length = len(channels[0])
    for c, tokens in enumerate(channels[1:], 2):
        if len(tokens) != length:
            raise SourceCorruptError(
                f"{where}: ragged series: channel 1 has {length} values but channel {c} "
                f"has {len(tokens)}"
            )
    try:
        return np.array([[float(token) for token in tokens] for tokens in channels]), None
    except ValueError:
        pass  # a `?` or a bad value: the slow path below finds which
    values = np.empty((len(channels), length))
    unknown = np.zeros(values.shape, dtype=bool)
    for c, tokens in enumerate(channels):
        for t, token in enumerate(tokens):
            token = token.strip()
            if token == "?":
                values[c, t], unknown[c, t] = np.nan, True
                continue
            try:
                values[c, t] = float(token)
            except ValueError:
                what = "an empty value" if not token else f"non-numeric value {token[:40]!r}"
                raise SourceCorruptError(
                    f"{where}: {what} at channel {c + 1}, position {t + 1}"
                ) from None
    return values, unknown


def _strip_padding(where: str, values: np.ndarray, unknown: np.ndarray | None) -> np.ndarray:
    """Drop the trailing NaN columns that the archive pads variable-length series with."""
    padding = np.isnan(values)
    if unknown is not None:
        padding &= ~unknown  # `?` is a missing value, never padding
    kept = np.flatnonzero(~padding.all(axis=0))
    if not kept.size:
        raise SourceCorruptError(f"{where}: the series holds only NaN")
    return values[:, : kept[-1] + 1]


def _fill(where: str, values: np.ndarray, mode: str) -> None:
    """Fill NaN in place: zeros, or linear in time per channel with the ends held."""
    missing = np.isnan(values)
    if mode == "zero":
        values[missing] = 0.0
        return
    steps = np.arange(values.shape[1])
    for c in np.flatnonzero(missing.any(axis=1)):
        known = ~missing[c]
        if not known.any():
            raise SourceCorruptError(f"{where}: channel {c + 1} has no value to fill from")
        values[c, ~known] = np.interp(steps[~known], steps[known], values[c, known])


def check_fill_mode(fill_missing: str | None) -> None:
    if fill_missing is not None and fill_missing not in FILL_MISSING_MODES:
        raise InvalidParameterError(
            f"fill_missing must be None or one of {', '.join(FILL_MISSING_MODES)}; "
            f"got {fill_missing!r}"
        )


def read_ts(path: Path, fill_missing: str | None = None) -> TsFile:
    """Decode one `.ts` file, checking its header against its data.

    Missing values (`?`, or NaN that is not trailing padding) are refused unless `fill_missing`
    is "zero" or "linear". Labels become indices in the order @classLabel declares the classes.
    """
    check_fill_mode(fill_missing)
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SourceCorruptError(f"{path}:{line}: not UTF-8 text ({exc.reason})") from None
    lines = text.split("\n")
    if lines[-1] == "":  # the newline that ends the last line does not start another
        lines.pop()
    header = _read_header(path, lines)
    univariate, equal_length = header.flag("univariate"), header.flag("equallength")
    declared_length = header.count("serieslength") if equal_length is not False else None
    channels = header.count("dimensions")
    if univariate and channels not in (None, 1):
        raise SourceCorruptError(
            f"{path}:{header.data_line}: the header says both @univariate true and "
            f"@dimensions {channels}"
        )
    said = (
        f"the header says @dimensions {channels}"
        if channels
        else "the header says @univariate true"
        if univariate
        else None
    )
    channels = channels or (1 if univariate else None)
    missing_allowed = header.flag("missing") is not False
    index = {name: i for i, name in enumerate(header.class_names)}
    series: list[np.ndarray] = []
    labels: list[int] = []
    numbers: list[int] = []
    n_filled = 0
    for number in range(header.data_line + 1, len(lines) + 1):
        line = lines[number - 1].strip()
        if not line or line.startswith(_COMMENT):
            continue
        where = f"{path}:{number}"
        if line.startswith("@"):
            raise SourceCorruptError(f"{where}: a header line after @data")
        body, colon, label = line.rpartition(":")
        label = label.strip()
        if not colon or not label or "," in label:
            raise SourceCorruptError(
                f"{where}: no class label after the last ':' (line cut short?)"
            )
        if label not in index:
            raise SourceCorruptError(
                f"{where}: unknown class label {label[:40]!r}; @classLabel declares "
                + " ".join(header.class_names)
            )
        values, unknown = _decode(where, body)
        if np.isinf(values).any():
            c, t = np.argwhere(np.isinf(values))[0]
            raise SourceCorruptError(
                f"{where}: infinite value at channel {c + 1}, position {t + 1}"
            )
        if equal_length is not True:
            values = _strip_padding(where, values, unknown)
        if channels is None:
            channels = len(values)
        if len(values) != channels:
            expected = said or f"the first series has {channels}"
            raise SourceCorruptError(f"{where}: {len(values)} channel(s), but {expected}")
        length = values.shape[1]
        if declared_length is not None and length != declared_length:
            raise SourceCorruptError(
                f"{where}: series of length {length}, but @seriesLength is {declared_length}"
            )
        if equal_length and series and length != series[0].shape[1]:
            raise SourceCorruptError(
                f"{where}: series of length {length}, but @equalLength is true and the first "
                f"series has length {series[0].shape[1]}"
            )
        missing = int(np.isnan(values).sum())
        if missing:
            c, t = np.argwhere(np.isnan(values))[0]
            at = f"missing value at channel {c + 1}, position {t + 1}"
            if not missing_allowed:
                raise SourceCorruptError(f"{where}: {at}, but the header says @missing false")
            if fill_missing is None:
                raise SourceCorruptError(
                    f"{where}: {at}; pass fill_missing='linear' or 'zero' to fill missing values"
                )
            _fill(where, values, fill_missing)
            n_filled += missing
        values.flags.writeable = False
        series.append(values)
        labels.append(index[label])
        numbers.append(number)
    if not series:
        raise SourceCorruptError(f"{path}:{header.data_line}: no series after @data (truncated?)")
    label_array = np.array(labels, dtype=np.int64)
    label_array.flags.writeable = False
    return TsFile(
        path=path,
        problem_name=header.fields["problemname"],
        header=header.fields,
        class_names=header.class_names,
        series=tuple(series),
        labels=label_array,
        line_numbers=tuple(numbers),
        n_filled=n_filled,
    )
