"""The UCR/UEA time-series archive: where its problems are found, and a problem as one pool.

A problem is two files, `<Name>_TRAIN.ts` and `<Name>_TEST.ts` (the format is read by `ts`).
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scale_datasets.errors import InvalidParameterError, SourceCorruptError, SourceNotFoundError
from scale_datasets.sources.common import (
    DOWNLOAD_TIMEOUT_S,
    default_root,
    find_files,
    one_line,
    sha256_of,
)
from scale_datasets.sources.ts import SeriesShape, TsFile, check_fill_mode, read_ts

log = logging.getLogger(__name__)

UCR_URL_ENV = "SCALE_DATASETS_UCR_URL"
# `{name}` stands for the problem name; the environment variable, when set, replaces the pattern.
UCR_DOWNLOAD_URL = "https://timeseriesclassification.com/aeon-toolkit/{name}.zip"
UCR_FOLDER = "UCR"  # problems live in <root>/UCR/<Name>/
# Wheels that ship archive problems in <package>/datasets/data/<Name>/, searched in this order.
PACKAGED_DATA_PACKAGES: tuple[str, ...] = ("aeon", "sktime")
_PROBLEM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
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


@dataclass(frozen=True, eq=False)
class SeriesSource(SeriesShape):
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


def _pair(folder: Path, problem: str) -> tuple[tuple[Path, ...] | None, str]:
    """The TRAIN and TEST files of `problem` in `folder` (names matched case-insensitively), or
    None and why not."""

    def as_file(where: Path, name: str) -> Path | None:
        found = _match(where, name)
        return found if found is not None and found.is_file() else None

    return find_files(folder, (f"{problem}_TRAIN.ts", f"{problem}_TEST.ts"), as_file)


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


def _load_pair(files: tuple[Path, ...], fill_missing: str | None) -> SeriesSource:
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
    check_fill_mode(fill_missing)
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
