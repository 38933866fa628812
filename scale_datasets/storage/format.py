"""Constants and small helpers that define the format on disk.

Version 2 adds the root attributes `layout` ("pixels" or "on-access") and `render` (the render op,
its plan column and parameters), and the `/base` group of on-access files. Version 1 files (all
MNIST-Scale, pixels layout) stay readable: they are read as pixels files rendered with
`pil_affine_scale` from their params.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

FORMAT_NAME = "scale-datasets"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
BASE_GROUP = "base"
# The splits every preset makes, in the order files list them.
SPLITS: tuple[str, ...] = ("train", "val", "test")

# Chunks of about this many bytes: big enough for fast gzip, small enough for random access.
TARGET_CHUNK_BYTES = 256 * 1024
GZIP_LEVEL = 1


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace, so equal content gives equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def chunk_shape(shape: tuple[int, ...], dtype: np.dtype) -> tuple[int, ...] | None:
    """Row-block chunks of about TARGET_CHUNK_BYTES; None (contiguous) for empty datasets."""
    if not shape or shape[0] == 0:
        return None
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize
    rows = max(1, min(shape[0], TARGET_CHUNK_BYTES // max(row_bytes, 1)))
    return (rows, *shape[1:])


def realisation_group(k: int) -> str:
    return f"realisation_{k}"
