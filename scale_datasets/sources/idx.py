"""Reader of MNIST-format IDX files (uint8 images and labels), gzipped or not.

The format is tiny: a 4-byte magic (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the payload in C order. We only accept what the
MNIST family uses (type 0x08 = uint8; 3-D images, 1-D labels) and check every byte is
accounted for, because a truncated download otherwise decodes into silently wrong data.
"""

from __future__ import annotations

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


# No MNIST-format file comes near this; a header declaring more is crafted or corrupt, and
# decoding it would exhaust memory.
MAX_PAYLOAD_BYTES = 8 * 2**30


def _read_raw(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise SourceNotFoundError(f"IDX file not found: {path}") from exc
    except IsADirectoryError as exc:
        raise SourceCorruptError(f"{path} is a directory, not an IDX file") from exc
    except OSError as exc:
        raise SourceCorruptError(f"cannot read IDX file {path}: {exc}") from exc


def _decoded(path: Path, raw: bytes, limit: int) -> bytes:
    """At most ``limit`` bytes of the file's content, gunzipping when the content (not the
    name) says gzip, without ever decompressing more than that (a gzip bomb stops here).

    Detecting by magic bytes lets a user hand us files that were renamed or unpacked by hand.
    """
    if not raw.startswith(GZIP_MAGIC):
        return raw[:limit]
    stream = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    pending = raw
    try:
        while len(out) < limit and not stream.eof:
            chunk = stream.decompress(pending, limit - len(out))
            pending = stream.unconsumed_tail
            out += chunk
            if not chunk and not pending:
                break
    except zlib.error as exc:
        raise SourceCorruptError(
            f"corrupt or truncated gzip stream in {path}: {exc}; delete it and fetch it again"
        ) from exc
    if not stream.eof and len(out) < limit:
        raise SourceCorruptError(
            f"corrupt or truncated gzip stream in {path}: it ends early; delete it and fetch it "
            "again"
        )
    return bytes(out)


def _read_idx(path: Path | str, ndim: int, what: str) -> np.ndarray:
    """Decode one uint8 IDX file of `ndim` dimensions, validating header and payload size."""
    path = Path(path)
    raw = _read_raw(path)
    header = 4 + 4 * ndim
    data = _decoded(path, raw, header)
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
    if len(data) < header:
        raise SourceCorruptError(
            f"{path}: IDX header truncated ({len(data)} bytes, need {header} for {ndim} dims)"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if any(d == 0 for d in dims[1:]):
        raise SourceCorruptError(f"{path}: IDX {what} of shape {dims}: empty samples")
    expected = math.prod(dims)
    if expected > MAX_PAYLOAD_BYTES:
        raise SourceCorruptError(
            f"{path}: IDX {what} header declares {dims} = {expected:,} bytes, more than "
            f"any MNIST-format file ({MAX_PAYLOAD_BYTES:,}); refused before decoding"
        )
    # The payload as declared, plus one byte to tell an oversized file, and never more.
    data = _decoded(path, raw, header + expected + 1)
    actual = len(data) - header
    if actual != expected:
        holds = f"file holds {actual}" if actual < expected else "file holds more"
        kind = "truncated" if actual < expected else "oversized"
        raise SourceCorruptError(
            f"{path}: {kind} IDX {what} payload: dims {dims} need {expected} bytes, {holds}"
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
