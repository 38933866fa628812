"""Encoding HDF5 chunks ourselves (gzip + fletcher32), so workers compress in parallel.

h5py compresses on the writing process, which made gzip the serial bottleneck of a build. Render
workers instead return each block's chunks already encoded exactly as HDF5's filter pipeline
would store them (deflate, then HDF5's Fletcher-32 checksum appended little-endian), and the
writer stores them with `write_direct_chunk`. Reading goes through HDF5's own filters, which
check every checksum, so any mismatch in this encoding is caught on the first read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

try:  # ISA-L writes the same zlib stream format ~5x faster than zlib at level 1
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - platforms without an isal wheel
    import zlib as _zlib

# Words per numpy dot: keeps each weighted block sum below 2**63 (65535 * 2**40 / 2).
_DOT_WORDS = 1 << 20


def _fold(total: int) -> int:
    """HDF5's repeated ``(x & 0xFFFF) + (x >> 16)`` of a non-negative sum, in closed form: it
    keeps x mod 65535 and never reaches 0 from a positive x, so the result is 0 only for 0."""
    return 0 if total == 0 else (total - 1) % 65535 + 1


def fletcher32(data: bytes) -> int:
    """HDF5's H5_checksum_fletcher32 (big-endian 16-bit words, odd tail byte shifted left).

    HDF5 folds its running sums every 360 words; folding only changes a sum by multiples of
    65535 (and never to 0), so the exact sums, folded once at the end, give the same value:
    ``sum1 = sum w_i`` and ``sum2 = sum (n - i) w_i`` (plus the tail byte in both).
    """
    words = np.frombuffer(data, dtype=">u2", count=len(data) // 2).astype(np.int64)
    n = len(words)
    sum1 = sum2 = 0
    for start in range(0, n, _DOT_WORDS):
        block = words[start : start + _DOT_WORDS]
        weights = np.arange(n - start, n - start - len(block), -1, dtype=np.int64)
        sum1 += int(block.sum())
        sum2 += int(np.dot(weights, block))
    if len(data) % 2:
        sum1 += data[-1] << 8
        sum2 += sum1
    return (_fold(sum2) << 16) | _fold(sum1)


def encode_chunks(rows: np.ndarray, chunk_rows: int, level: int) -> list[bytes]:
    """The stored bytes of each chunk of `rows` (the last one zero-padded to a full chunk)."""
    chunks = []
    for start in range(0, len(rows), chunk_rows):
        block = rows[start : start + chunk_rows]
        if len(block) < chunk_rows:
            padded = np.zeros((chunk_rows, *rows.shape[1:]), dtype=rows.dtype)
            padded[: len(block)] = block
            block = padded
        packed = _zlib.compress(np.ascontiguousarray(block).tobytes(), level)
        chunks.append(packed + fletcher32(packed).to_bytes(4, "little"))
    return chunks


def render_and_encode(
    state: Any, fn: Callable[..., np.ndarray], args: tuple[Any, ...], chunk_rows: int, level: int
) -> tuple[np.ndarray, list[bytes]]:
    """Run a render task `fn(state, *args)` and encode its chunks in the same (worker) process."""
    rows = fn(state, *args)
    return rows, encode_chunks(rows, chunk_rows, level)
