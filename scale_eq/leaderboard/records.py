"""Run records: one JSON line per finished run in ``<out>/records.jsonl``.

Each record is appended with a single ``write`` on a file opened with ``O_APPEND`` under an
exclusive ``flock``, so processes and nodes sharing one folder (on a filesystem with working
locks) never interleave lines. Readers skip a torn last line (a writer killed mid-line) with a
warning instead of failing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scale_datasets.errors import InvalidParameterError

__all__ = ["RECORDS_FILE", "SCHEMA_VERSION", "append_record", "finished_runs", "read_records"]

SCHEMA_VERSION = 1
RECORDS_FILE = "records.jsonl"

log = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: appends stay atomic per write
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def _locked(fd: int) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def append_record(out: Path, record: dict[str, Any]) -> Path:
    """Append one record as one line of ``out/records.jsonl`` (created if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / RECORDS_FILE
    line = (json.dumps(record, sort_keys=True, allow_nan=True) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        with _locked(fd):
            # After a torn last line (a writer killed mid-line) start a new line, or this
            # record would be glued to the torn one and skipped with it.
            if os.fstat(fd).st_size:
                os.lseek(fd, -1, os.SEEK_END)
                if os.read(fd, 1) != b"\n":
                    line = b"\n" + line
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"short write to {path}: {written} of {len(line)} bytes")
            os.fsync(fd)
    finally:
        os.close(fd)
    return path


def read_records(source: Path) -> list[dict[str, Any]]:
    """Every record of a runs folder (its records.jsonl) or of one .jsonl file."""
    path = source / RECORDS_FILE if source.is_dir() else source
    if not path.exists():
        raise InvalidParameterError(f"runs: no records at {path}")
    records = []
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                log.warning(
                    "%s line %d: not a complete record (a writer was killed?); skipped",
                    path,
                    number,
                )
                continue
            if not isinstance(record, dict) or record.get("schema_version") != SCHEMA_VERSION:
                log.warning(
                    "%s line %d: not a schema-%d record; skipped", path, number, SCHEMA_VERSION
                )
                continue
            records.append(record)
    return records


def finished_runs(out: Path) -> set[str]:
    """Run ids that already have a record in ``out``."""
    if not (out / RECORDS_FILE).exists():
        return set()
    return {r["run_id"] for r in read_records(out)}
