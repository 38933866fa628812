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

# HDF5 folds its 32-bit sums every 360 words, before sum2 could overflow.
_FLETCHER_BLOCK = 360


def fletcher32(data: bytes) -> int:
    """HDF5's H5_checksum_fletcher32 (big-endian 16-bit words, odd tail byte shifted left)."""
    words = np.frombuffer(data, dtype=">u2", count=len(data) // 2).astype(np.int64)
    sum1 = sum2 = 0
    for start in range(0, len(words), _FLETCHER_BLOCK):
        block = words[start : start + _FLETCHER_BLOCK]
        n = len(block)
        # sum2 gains sum1 once per word: n * sum1 + the running sums of the block
        sum2 += n * sum1 + int(np.dot(np.arange(n, 0, -1, dtype=np.int64), block))
        sum1 += int(block.sum())
        sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
        sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    if len(data) % 2:
        sum1 += data[-1] << 8
        sum2 += sum1
        sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
        sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
    sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    return ((sum2 << 16) | sum1) & 0xFFFFFFFF


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
    fn: Callable[..., np.ndarray], args: tuple[Any, ...], chunk_rows: int, level: int
) -> tuple[np.ndarray, list[bytes]]:
    """Run a render task and encode its chunks in the same (worker) process."""
    rows = fn(*args)
    return rows, encode_chunks(rows, chunk_rows, level)
