"""Reading datasets back for use: digests checked on whole reads, failures named.

`read_checked` streams a whole dataset through its sha256 (keeping only the rows asked for);
`read_rows` reads rows in any order (lazy access); `member` names a dataset the file lacks.
Every failure is an IntegrityError naming the file and the dataset.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np

from ..errors import IntegrityError
from .hashing import array_bytes
from .reader import row_blocks, unreadable


def read_checked(path: Path, dataset: h5py.Dataset, rows: np.ndarray | None = None) -> np.ndarray:
    """A whole dataset, or its given rows (ascending, distinct), with the sha256 of the whole
    dataset checked against the recorded one as it streams past."""
    name = dataset.name.lstrip("/")
    rows = np.arange(dataset.shape[0]) if rows is None else rows
    if len(rows) and (rows[0] < 0 or rows[-1] >= dataset.shape[0]):
        raise IntegrityError(
            f"{path}: rows up to {rows[-1]} asked of dataset {name}, which holds {dataset.shape[0]}"
        )
    out = np.empty((len(rows), *dataset.shape[1:]), dtype=dataset.dtype)
    digest = hashlib.sha256()
    for start, block in row_blocks(dataset):
        digest.update(array_bytes(block))
        lo, hi = np.searchsorted(rows, [start, start + len(block)])
        out[lo:hi] = block[rows[lo:hi] - start]
    if digest.hexdigest() != dataset.attrs.get("sha256"):
        raise IntegrityError(f"{path}: dataset {name} does not match its recorded sha256")
    return out


def read_rows(path: Path, dataset: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """Rows in the given order (HDF5 wants increasing, distinct indices: read those, reorder)."""
    wanted, where = np.unique(rows, return_inverse=True)
    try:
        return dataset[wanted][where]
    except OSError as exc:
        raise unreadable(path, dataset, exc) from exc


def member(group: h5py.Group, name: str) -> h5py.Dataset:
    """A dataset of the file, or IntegrityError naming it if the file lacks it."""
    if name not in group:
        where = group.name.strip("/")
        full = f"{where}/{name}" if where else name
        raise IntegrityError(f"{group.file.filename}: dataset {full} is missing")
    return group[name]
