"""Deterministic label-stratified splits.

Two rules decide how many members of each class a part gets (members themselves are always
drawn from a caller-given generator):

* "proportional": the floor or the ceiling of the class's share of the whole pool
  (largest-remainder rounding in exact integer arithmetic, ties to the lower class label), so
  per-class counts are within 1 of proportional.
* "sklearn": what scikit-learn's ``train_test_split(stratify=...)`` allocates, which is how
  MNIST-Scale was split. Each part is sized from what earlier parts left, with sklearn's float64
  rounding; on MNIST that moves one image between two classes of the 50,000 test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from .errors import InvalidParameterError

CountRule = Literal["proportional", "sklearn"]

COUNT_RULES: tuple[str, ...] = ("proportional", "sklearn")


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


def sklearn_counts(class_counts: np.ndarray, total: int) -> np.ndarray:
    """Per-class counts of a stratified draw of `total` from `class_counts`, as sklearn sizes them.

    scikit-learn's ``_approximate_mode`` (used by ``StratifiedShuffleSplit`` and so by
    ``train_test_split(stratify=...)``): floor ``class_counts / class_counts.sum() * total`` in
    float64 (that operation order, so the float rounding is sklearn's), then add one to the
    classes with the largest float remainders until the counts sum to `total`. sklearn breaks
    exact remainder ties at random; here they go to the lower class label, so the result is
    the one sklearn returns when its tie draw happens to pick the lowest labels.
    """
    class_counts = np.asarray(class_counts, dtype=np.int64)
    pool = int(class_counts.sum())
    if total < 0 or total > pool:
        raise InvalidParameterError(f"cannot draw {total} samples from a pool of {pool}")
    if total == 0:
        return np.zeros_like(class_counts)
    continuous = class_counts / pool * total
    floored = np.floor(continuous)
    remainder = continuous - floored
    counts = floored.astype(np.int64)
    short = total - int(counts.sum())
    # Largest float remainder first; np.lexsort sorts by the last key first, ties keep class order.
    order = np.lexsort((np.arange(len(class_counts)), -remainder))
    counts[order[:short]] += 1
    return counts


def stratified_partition(
    labels: np.ndarray,
    sizes: Sequence[int],
    rng: np.random.Generator,
    counts: CountRule = "proportional",
) -> list[np.ndarray]:
    """Draw disjoint, label-stratified subsets of the given sizes from `labels`.

    Returns positions into `labels`, each part sorted ascending. Parts are allocated in order
    from what earlier parts left, so parts that use up the pool still add up exactly. `counts`
    picks how many of each class a part gets:

    * "proportional" (default): per class, the floor or ceiling of the part's share of the whole
      of `labels` (largest remainder, ties to the lower class label).
    * "sklearn": ``sklearn_counts`` of what earlier parts left, i.e. part 0 from the whole pool,
      part 1 from the rest, and so on. For two parts these are exactly the per-class counts of
      ``train_test_split(train_size=sizes[0], test_size=sizes[1], stratify=labels)`` (exact
      remainder ties, which sklearn breaks at random, go to the lower class label).

    Which members fill those counts is drawn from `rng` the same way under both rules.
    """
    labels = np.asarray(labels)
    if counts not in COUNT_RULES:
        raise InvalidParameterError(
            f"counts must be one of {', '.join(COUNT_RULES)}, got {counts!r}"
        )
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
        if counts == "sklearn":
            part_counts = sklearn_counts(remaining, size)
        else:
            part_counts = _capped_counts(class_counts, size, remaining)
        remaining -= part_counts
        per_part.append(part_counts)
    parts: list[list[np.ndarray]] = [[] for _ in sizes]
    for c, label in enumerate(classes):
        members = rng.permutation(np.flatnonzero(labels == label))
        start = 0
        for p, part_counts in enumerate(per_part):
            parts[p].append(members[start : start + part_counts[c]])
            start += part_counts[c]
    return [np.sort(np.concatenate(part)) if part else np.empty(0, np.int64) for part in parts]


def two_step_split(
    labels: np.ndarray, n_train: int, n_val: int, n_test: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """SESN's splits (and Basting's after it): sklearn's `train_test_split(stratify=...)` of
    the pool into train+val and test, then of train+val into train and val, with sklearn's
    per-class counts. Returns positions into `labels` per split, each ascending."""
    trainval, test = stratified_partition(labels, [n_train + n_val, n_test], rng, counts="sklearn")
    train, val = stratified_partition(labels[trainval], [n_train, n_val], rng, counts="sklearn")
    return {"train": trainval[train], "val": trainval[val], "test": test}


def equal_groups(n: int, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """n plan values in equal groups (sizes differ by at most 1, nothing left over), shuffled.

    Which values get the extra sample (when len(values) does not divide n) is drawn too.
    """
    values = np.asarray(values)
    counts = np.full(len(values), n // len(values))
    counts[rng.permutation(len(values))[: n % len(values)]] += 1
    return rng.permutation(np.repeat(values, counts))
