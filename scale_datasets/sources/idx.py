"""Reader of MNIST-format IDX files (uint8 images and labels), gzipped or not.

The format is tiny: a 4-byte magic (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the payload in C order. We only accept what the
MNIST family uses (type 0x08 = uint8; 3-D images, 1-D labels) and check every byte is
accounted for, because a truncated download otherwise decodes into silently wrong data.
"""

from __future__ import annotations

import gzip
import logging
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from scale_datasets.errors import SourceCorruptError, SourceNotFoundError

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
UINT8_TYPE_CODE = 0x08
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


def _read_bytes(path: Path) -> bytes:
    """Return the decoded file content, gunzipping when the content (not the name) says gzip.

    Detecting by magic bytes lets a user hand us files that were renamed or unpacked by hand.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise SourceNotFoundError(f"IDX file not found: {path}") from exc
    except OSError as exc:
        raise SourceCorruptError(f"cannot read IDX file {path}: {exc}") from exc
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (gzip.BadGzipFile, EOFError, zlib.error, OSError) as exc:
        raise SourceCorruptError(
            f"corrupt or truncated gzip stream in {path}: {exc}; delete it and fetch it again"
        ) from exc


def _read_idx(path: Path | str, ndim: int, what: str) -> np.ndarray:
    """Decode one uint8 IDX file of `ndim` dimensions, validating header and payload size."""
    path = Path(path)
    data = _read_bytes(path)
    expected_magic = (UINT8_TYPE_CODE << 8) | ndim
    if len(data) < 4:
        raise SourceCorruptError(
            f"{path} is not an IDX {what} file: {len(data)} bytes, too short for a header"
        )
    (magic,) = struct.unpack(">I", data[:4])
    if magic != expected_magic:
        zeros, type_code, got_ndim = magic >> 16, (magic >> 8) & 0xFF, magic & 0xFF
        problems = ["no IDX header"] if zeros else []
        if zeros == 0 and type_code != UINT8_TYPE_CODE:
            problems.append(f"type code 0x{type_code:02x}, need 0x08 (uint8)")
        if zeros == 0 and got_ndim != ndim:
            problems.append(f"{got_ndim} dimensions, need {ndim}")
        detail = "; ".join(problems)
        raise SourceCorruptError(
            f"{path} is not an IDX {what} file: magic 0x{magic:08x}, expected "
            f"0x{expected_magic:08x} ({detail})"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise SourceCorruptError(
            f"{path}: IDX header truncated ({len(data)} bytes, need {header} for {ndim} dims)"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = math.prod(dims)
    actual = len(data) - header
    if actual != expected:
        kind = "truncated" if actual < expected else "oversized"
        raise SourceCorruptError(
            f"{path}: {kind} IDX {what} payload: dims {dims} need {expected} bytes, "
            f"file holds {actual}"
        )
    log.debug("read %s %s from %s", what, dims, path)
    # frombuffer shares the decoded bytes instead of copying them (the array is read-only).
    return np.frombuffer(data, dtype=np.uint8, count=expected, offset=header).reshape(dims)


def read_idx_images(path: Path | str) -> np.ndarray:
    """Read a uint8 image IDX file (magic 0x00000803) as a read-only (N, H, W) uint8 array."""
    return _read_idx(path, 3, "images")


def read_idx_labels(path: Path | str) -> np.ndarray:
    """Read a uint8 label IDX file (magic 0x00000801) as a read-only (N,) uint8 array."""
    return _read_idx(path, 1, "labels")
