"""The UCR/UEA time-series archive: its `.ts` text format and where its problems are found.

A problem is two files, `<Name>_TRAIN.ts` and `<Name>_TEST.ts`: header lines (`@problemName`,
`@univariate`, `@equalLength`, `@seriesLength`, `@classLabel true <labels>` ...), then `@data` and
one series per line, channels separated by `:`, values by `,`, the class label after the last `:`.
The reader checks the header against the data and names the file and line of the first fault.
Problems are looked up in a folder the user names, under the root, in the copies that the aeon and
sktime wheels ship (located without importing those packages: importing them takes seconds), and
only then downloaded from the archive.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import logging
import os
import re
import shutil
import tempfile
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from scale_datasets.errors import InvalidParameterError, SourceCorruptError, SourceNotFoundError
from scale_datasets.sources.common import DOWNLOAD_TIMEOUT_S, default_root, one_line, sha256_of

log = logging.getLogger(__name__)

UCR_URL_ENV = "SCALE_DATASETS_UCR_URL"
# `{name}` stands for the problem name; the environment variable, when set, replaces the pattern.
UCR_DOWNLOAD_URL = "https://timeseriesclassification.com/aeon-toolkit/{name}.zip"
UCR_FOLDER = "UCR"  # problems live in <root>/UCR/<Name>/
# Wheels that ship archive problems in <package>/datasets/data/<Name>/, searched in this order.
PACKAGED_DATA_PACKAGES: tuple[str, ...] = ("aeon", "sktime")
FILL_MISSING_MODES: tuple[str, ...] = ("zero", "linear")
_PROBLEM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_BOOLEAN_FIELDS = ("timestamps", "missing", "univariate", "equallength", "targetlabel")
_COUNT_FIELDS = ("serieslength", "dimensions")
_COMMENT = ("#", "%")  # the archive's files use both (ARFF's is %)
_KNOWN_FIELDS = (*_BOOLEAN_FIELDS, *_COUNT_FIELDS, "problemname", "classlabel")
# urllib raises URLError/timeouts (OSError) and IncompleteRead (HTTPException); a broken archive
# raises the zip errors; an encrypted member RuntimeError.
_DOWNLOAD_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    EOFError,
    RuntimeError,
    http.client.HTTPException,
    zipfile.BadZipFile,
    zlib.error,
)


@dataclass(frozen=True, eq=False)  # eq on numpy fields would raise; compare the sha256 instead
class TsFile:
    """One decoded `.ts` file: its header, class names and series with their labels."""

    path: Path
    problem_name: str
    header: Mapping[str, str]  # lower-cased keyword (without `@`) -> its text as written
    class_names: tuple[str, ...]  # in the order @classLabel declares them
    series: tuple[np.ndarray, ...]  # float64 (C, L_i) each, read-only
    labels: np.ndarray  # int64 (N,) indices into class_names, read-only
    line_numbers: tuple[int, ...]  # the line each series was read from
    n_filled: int  # missing values filled (0 unless fill_missing was given)

    @property
    def channels(self) -> int:
        return int(self.series[0].shape[0])

    @property
    def lengths(self) -> np.ndarray:
        return np.array([s.shape[1] for s in self.series], dtype=np.int64)


@dataclass(frozen=True, eq=False)
class SeriesSource:
    """A problem's pool: train series then test series, read-only, with content hashes."""

    name: str
    series: tuple[np.ndarray, ...]
    labels: np.ndarray
    n_train: int
    class_names: tuple[str, ...]
    files: tuple[str, ...]
    series_sha256: str
    labels_sha256: str
    fill_missing: str | None = None

    @property
    def n_test(self) -> int:
        return len(self.series) - self.n_train

    @property
    def channels(self) -> int:
        return int(self.series[0].shape[0])

    @property
    def lengths(self) -> np.ndarray:
        return np.array([s.shape[1] for s in self.series], dtype=np.int64)

    @property
    def equal_length(self) -> bool:
        lengths = self.lengths
        return bool((lengths == lengths[0]).all())

    def describe(self) -> dict[str, Any]:
        """JSON-able summary that goes into a built file's `source` attribute."""
        lengths = self.lengths
        return {
            "name": self.name,
            "files": list(self.files),
            "n_train": self.n_train,
            "n_test": self.n_test,
            "channels": self.channels,
            "min_length": int(lengths.min()),
            "max_length": int(lengths.max()),
            "class_names": list(self.class_names),
            "fill_missing": self.fill_missing,
            "sha256": {"series": self.series_sha256, "labels": self.labels_sha256},
        }


def series_sha256(series: tuple[np.ndarray, ...]) -> str:
    """sha256 over each series' shape and float64 values, in order (lengths may differ)."""
    digest = hashlib.sha256()
    for values in series:
        digest.update(np.asarray(values.shape, dtype="<i8").tobytes())
        digest.update(np.ascontiguousarray(values, dtype="<f8").tobytes())
    return digest.hexdigest()


# --- the .ts format ----------------------------------------------------------------------------


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


def _check_fill_mode(fill_missing: str | None) -> None:
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
    _check_fill_mode(fill_missing)
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


def _pool(train: TsFile, test: TsFile, fill_missing: str | None) -> SeriesSource:
    """Train then test as one source, test labels mapped onto the train header's class order."""
    if set(train.class_names) != set(test.class_names):
        raise SourceCorruptError(
            f"{test.path}:1: @classLabel declares {' '.join(test.class_names)}, but "
            f"{train.path} declares {' '.join(train.class_names)}"
        )
    if test.channels != train.channels:
        raise SourceCorruptError(
            f"{test.path}:{test.line_numbers[0]}: {test.channels} channels, but {train.path} "
            f"has {train.channels}"
        )
    if test.problem_name != train.problem_name:
        log.warning(
            "%s names the problem %r but %s names it %r; using %r",
            test.path,
            test.problem_name,
            train.path,
            train.problem_name,
            train.problem_name,
        )
    order = {name: i for i, name in enumerate(train.class_names)}
    to_train = np.array([order[name] for name in test.class_names], dtype=np.int64)
    labels = np.concatenate([train.labels, to_train[test.labels]])
    labels.flags.writeable = False
    series = train.series + test.series
    lengths = [s.shape[1] for s in series]
    log.info(
        "source %s: %d train + %d test series, %d channel(s), length %d..%d, %d classes, from %s",
        train.problem_name,
        len(train.series),
        len(test.series),
        train.channels,
        min(lengths),
        max(lengths),
        len(train.class_names),
        train.path.parent,
    )
    if train.n_filled or test.n_filled:
        log.info("filled %d missing values (%s)", train.n_filled + test.n_filled, fill_missing)
    return SeriesSource(
        name=train.problem_name,
        series=series,
        labels=labels,
        n_train=len(train.series),
        class_names=train.class_names,
        files=(str(train.path.absolute()), str(test.path.absolute())),
        series_sha256=series_sha256(series),
        labels_sha256=sha256_of(labels),
        fill_missing=fill_missing,
    )


# --- where problems are found ------------------------------------------------------------------


def packaged_problem_dirs() -> list[Path]:
    """The `datasets/data` folders of the installed aeon / sktime wheels.

    `find_spec` on a top-level name locates the package without executing it.
    """
    found = []
    for package in PACKAGED_DATA_PACKAGES:
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            data = Path(location) / "datasets" / "data"
            if data.is_dir():
                found.append(data)
    return found


def _match(folder: Path, name: str) -> Path | None:
    """`folder/name`, else the entry whose name matches it case-insensitively."""
    if (folder / name).exists():
        return folder / name
    matches = sorted(p for p in folder.iterdir() if p.name.lower() == name.lower())
    return matches[0] if matches else None


def _pair(folder: Path, problem: str) -> tuple[tuple[Path, Path] | None, str]:
    """The TRAIN and TEST files of `problem` in `folder`, or None and why not."""
    if not folder.is_dir():
        return None, "does not exist"
    files = [_match(folder, f"{problem}_{split}.ts") for split in ("TRAIN", "TEST")]
    if files[0] is None or files[1] is None:
        return None, f"lacks {problem}_TRAIN.ts and {problem}_TEST.ts"
    return (files[0], files[1]), ""


def _problem_folder(parent: Path, problem: str) -> Path:
    """`parent/<problem>`, matched case-insensitively when `parent` exists."""
    return (_match(parent, problem) if parent.is_dir() else None) or parent / problem


def _download_url(problem: str) -> str:
    pattern = os.environ.get(UCR_URL_ENV) or UCR_DOWNLOAD_URL
    return pattern.replace("{name}", urllib.parse.quote(problem))


def _extract(archive: Path, problem: str, into: Path) -> Path:
    """Copy the problem's two .ts files out of the zip (wherever they sit in it) into
    `into/<Name>/`, Name spelled as the archive does; other members are never written."""
    wanted = {f"{problem}_{split}.ts".lower(): split for split in ("TRAIN", "TEST")}
    with zipfile.ZipFile(archive) as zipped:
        members = {}
        for member in zipped.namelist():
            base = member.rsplit("/", 1)[-1]
            if base.lower() in wanted:
                members.setdefault(wanted[base.lower()], (member, base))
        if len(members) < 2:
            raise zipfile.BadZipFile(f"the archive lacks {problem}_TRAIN.ts or {problem}_TEST.ts")
        folder = into / members["TRAIN"][1][: -len("_TRAIN.ts")]
        folder.mkdir()
        for member, base in members.values():
            with zipped.open(member) as source, open(folder / base, "wb") as target:
                shutil.copyfileobj(source, target)
    return folder


def _download(problem: str, root: Path, tried: str, fix: str) -> Path:
    """Fetch the problem's zip into `root/UCR/<Name>/`, built in a temporary folder then renamed
    so an interrupted download never leaves a half folder under the final name."""
    url = _download_url(problem)
    parent = root / UCR_FOLDER
    tmp: Path | None = None
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{problem}-", dir=parent))
        log.info("downloading UCR problem %s from %s into %s", problem, url, parent)
        with (
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
            open(tmp / "archive.zip", "wb") as out,
        ):
            shutil.copyfileobj(response, out)
        staged = _extract(tmp / "archive.zip", problem, tmp)
        final = parent / staged.name
        try:
            os.replace(staged, final)
        except OSError:
            # The folder exists already (an empty or partial one, or another process won the
            # race): replace the files one by one, each still atomically.
            for file in staged.iterdir():
                os.replace(file, final / file.name)
        return final
    except _DOWNLOAD_ERRORS as exc:
        raise SourceNotFoundError(
            f"downloading UCR problem {problem} from {url} into {parent} failed "
            f"({type(exc).__name__}: {one_line(str(exc), 150)}); looked first in {tried}; {fix}"
        ) from exc
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _load_pair(files: tuple[Path, Path], fill_missing: str | None) -> SeriesSource:
    return _pool(read_ts(files[0], fill_missing), read_ts(files[1], fill_missing), fill_missing)


def load_ucr(
    problem: str,
    *,
    root: Path | None = None,
    source_dir: Path | None = None,
    download: bool = True,
    fill_missing: str | None = None,
) -> SeriesSource:
    """Load a UCR/UEA problem by name (case-insensitive) as one pool, train then test.

    `source_dir` names the folder holding `<Name>_TRAIN.ts` and `<Name>_TEST.ts` and skips the
    search. Otherwise the problem is looked up in `<root>/UCR/<Name>/`, then in the packaged
    copies of the aeon and sktime wheels, and only then downloaded (if `download`).
    """
    _check_fill_mode(fill_missing)
    if not isinstance(problem, str) or not _PROBLEM_NAME.fullmatch(problem):
        raise InvalidParameterError(
            f"problem must be a UCR/UEA problem name (letters, digits, _ and -), got {problem!r}"
        )
    hint = f"--source-dir DIR holding {problem}_TRAIN.ts and {problem}_TEST.ts"
    if source_dir is not None:
        folder = Path(source_dir).expanduser()
        files, why = _pair(folder, problem)
        if files is None:
            raise SourceNotFoundError(f"source folder {folder} {why}; pass {hint}")
        return _load_pair(files, fill_missing)

    root = Path(root).expanduser() if root is not None else default_root()
    packaged = packaged_problem_dirs()
    notes = []
    for folder in (
        _problem_folder(root / UCR_FOLDER, problem),
        *(_problem_folder(data, problem) for data in packaged),
    ):
        files, why = _pair(folder, problem)
        if files is not None:
            return _load_pair(files, fill_missing)
        notes.append(f"{folder} ({why})")
    if not packaged:
        notes.append(f"the {' and '.join(PACKAGED_DATA_PACKAGES)} wheels (not installed)")
    tried = ", ".join(notes)
    fix = f"pass {hint}, or run `pip install --no-deps aeon` (ships a few problems)"
    if not download:
        raise SourceNotFoundError(
            f"UCR problem {problem} not found; looked in {tried}; {fix}, or allow the download"
        )
    folder = _download(problem, root, tried, fix + ", or check the network")
    files, why = _pair(folder, problem)
    if files is None:
        raise SourceNotFoundError(f"downloaded UCR problem {problem} but {folder} {why}; {fix}")
    return _load_pair(files, fill_missing)
