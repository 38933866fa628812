"""Deterministic label-stratified splits.

Each part of a split gets, for every class, the floor or the ceiling of its proportional share
(largest-remainder rounding, ties to the lower class label), so per-class counts are within 1
of proportional. Members are drawn from a caller-given generator.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import InvalidParameterError


def proportional_counts(class_counts: np.ndarray, total: int) -> np.ndarray:
    """Split `total` over classes in proportion to `class_counts` (largest remainder)."""
    class_counts = np.asarray(class_counts, dtype=np.int64)
    pool = int(class_counts.sum())
    if total < 0 or total > pool:
        raise InvalidParameterError(f"cannot draw {total} samples from a pool of {pool}")
    scaled = class_counts * total
    counts = scaled // pool if pool else np.zeros_like(class_counts)
    remainders = scaled % pool if pool else np.zeros_like(class_counts)
    short = total - int(counts.sum())
    # Largest remainder first; np.lexsort sorts by the last key first, ties keep class order.
    order = np.lexsort((np.arange(len(class_counts)), -remainders))
    counts[order[:short]] += 1
    return counts


def _capped_counts(class_counts: np.ndarray, total: int, caps: np.ndarray) -> np.ndarray:
    """Largest-remainder allocation that never takes more of a class than `caps` allows."""
    pool = int(class_counts.sum())
    scaled = class_counts * total
    counts = np.minimum(scaled // pool, caps)
    remainders = scaled - counts * pool  # bigger means further below the exact share
    while (short := total - int(counts.sum())) > 0:
        room = np.flatnonzero(counts < caps)
        order = room[np.lexsort((room, -remainders[room]))]
        counts[order[:short]] += 1
        remainders[order[:short]] -= pool
    return counts


def stratified_partition(
    labels: np.ndarray, sizes: Sequence[int], rng: np.random.Generator
) -> list[np.ndarray]:
    """Draw disjoint, label-stratified subsets of the given sizes from `labels`.

    Returns positions into `labels`, each part sorted ascending. Every part gets, per class,
    the floor or ceiling of its share of the whole of `labels` (parts are allocated in order
    from what earlier parts left, so parts that use up the pool still add up exactly).
    """
    labels = np.asarray(labels)
    if any(size < 0 for size in sizes):
        raise InvalidParameterError(f"split sizes must be >= 0, got {list(sizes)}")
    if sum(sizes) > len(labels):
        raise InvalidParameterError(
            f"split sizes {' + '.join(map(str, sizes))} = {sum(sizes)} exceed the pool of "
            f"{len(labels)} samples"
        )
    classes, class_counts = np.unique(labels, return_counts=True)
    class_counts = class_counts.astype(np.int64)
    remaining = class_counts.copy()
    per_part = []
    for size in sizes:
        counts = _capped_counts(class_counts, size, remaining)
        remaining -= counts
        per_part.append(counts)
    parts: list[list[np.ndarray]] = [[] for _ in sizes]
    for c, label in enumerate(classes):
        members = rng.permutation(np.flatnonzero(labels == label))
        start = 0
        for p, counts in enumerate(per_part):
            parts[p].append(members[start : start + counts[c]])
            start += counts[c]
    return [np.sort(np.concatenate(part)) if part else np.empty(0, np.int64) for part in parts]
