import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scale_datasets.errors import InvalidParameterError
from scale_datasets.splits import proportional_counts, stratified_partition


@given(st.lists(st.integers(0, 500), min_size=1, max_size=12), st.data())
def test_proportional_counts_are_exact_and_within_one(class_counts, data):
    counts = np.array(class_counts)
    total = data.draw(st.integers(0, int(counts.sum())))
    got = proportional_counts(counts, total)
    assert got.sum() == total
    if counts.sum():
        assert np.all(np.abs(got - counts * total / counts.sum()) < 1)
    assert np.all(got <= counts)


def test_proportional_counts_rejects_more_than_the_pool():
    with pytest.raises(InvalidParameterError, match="cannot draw 11 samples from a pool of 10"):
        proportional_counts(np.array([5, 5]), 11)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 10),
    st.integers(50, 400),
    st.floats(0.05, 0.5),
    st.floats(0.05, 0.4),
    st.integers(0, 2**32),
)
def test_stratified_partition_is_disjoint_exact_and_stratified(n_classes, n, a, b, seed):
    labels = np.random.default_rng(seed).integers(0, n_classes, n)
    sizes = [int(a * n), int(b * n)]
    parts = stratified_partition(labels, sizes, np.random.default_rng(seed))
    assert [len(p) for p in parts] == sizes
    assert len(np.intersect1d(parts[0], parts[1])) == 0
    classes, pool_counts = np.unique(labels, return_counts=True)
    for part, size in zip(parts, sizes, strict=True):
        per_class = np.array([(labels[part] == c).sum() for c in classes])
        assert np.all(np.abs(per_class - pool_counts * size / n) < 1)
        assert np.all(np.diff(part) > 0)  # sorted, no repeats


def test_stratified_partition_is_a_function_of_the_generator_state():
    labels = np.repeat(np.arange(10), 30)
    first = stratified_partition(labels, [100, 50], np.random.default_rng(7))
    again = stratified_partition(labels, [100, 50], np.random.default_rng(7))
    other = stratified_partition(labels, [100, 50], np.random.default_rng(8))
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


def test_stratified_partition_rejects_oversized_splits():
    with pytest.raises(InvalidParameterError, match="exceed the pool of 30"):
        stratified_partition(np.zeros(30), [20, 11], np.random.default_rng(0))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 300), min_size=2, max_size=10),
    st.floats(0.0, 1.0),
    st.integers(0, 2**32),
)
def test_a_partition_of_the_whole_pool_adds_up_and_stays_stratified(class_counts, frac, seed):
    labels = np.repeat(np.arange(len(class_counts)), class_counts)
    n = len(labels)
    sizes = [int(frac * n), n - int(frac * n)]
    parts = stratified_partition(labels, sizes, np.random.default_rng(seed))
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(n))
    for part, size in zip(parts, sizes, strict=True):
        per_class = np.bincount(labels[part], minlength=len(class_counts))
        if n:
            assert np.all(np.abs(per_class - np.array(class_counts) * size / n) < 1)
