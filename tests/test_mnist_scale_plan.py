"""The protocol's random decisions: splits, scale draws, realisations, validation."""

import numpy as np
import pytest
from scipy import stats

from scale_datasets.errors import InvalidParameterError
from scale_datasets.presets.mnist_scale import PRESET, MNISTScaleParams


class Pool:
    """A stand-in source with MNIST's size and a realistic, unbalanced label mix."""

    def __init__(self, n: int = 70_000, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.labels = rng.choice(10, n, p=np.linspace(0.8, 1.2, 10) / 10)
        self.images = np.zeros((n, 28, 28), np.uint8)


@pytest.fixture(scope="module")
def pool() -> Pool:
    return Pool()


@pytest.fixture(scope="module")
def plan6(pool):
    return PRESET.plan(MNISTScaleParams(), pool)


def _by_split(plan, k):
    return {
        s.group.split("/")[1]: s for s in plan.splits if s.group.startswith(f"realisation_{k}/")
    }


def test_split_sizes_are_exact_for_every_realisation(plan6):
    for k in range(6):
        splits = _by_split(plan6, k)
        assert {name: len(s) for name, s in splits.items()} == {
            "train": 10_000,
            "val": 2_000,
            "test": 50_000,
        }


def test_splits_are_disjoint_and_stratified(plan6, pool):
    pool_counts = np.bincount(pool.labels, minlength=10)
    for k in range(6):
        splits = _by_split(plan6, k)
        index = {n: s.columns["source_index"] for n, s in splits.items()}
        assert len(np.intersect1d(index["train"], index["val"])) == 0
        assert len(np.intersect1d(index["train"], index["test"])) == 0
        assert len(np.intersect1d(index["val"], index["test"])) == 0
        trainval = np.concatenate([index["train"], index["val"]])
        tv_counts = np.bincount(pool.labels[trainval], minlength=10)
        test_counts = np.bincount(pool.labels[index["test"]], minlength=10)
        assert np.all(np.abs(tv_counts - pool_counts * 12_000 / len(pool.labels)) < 1)
        assert np.all(np.abs(test_counts - pool_counts * 50_000 / len(pool.labels)) < 1)
        for name, size in (("train", 10_000), ("val", 2_000)):
            counts = np.bincount(splits[name].columns["labels"], minlength=10)
            assert np.all(np.abs(counts - tv_counts * size / 12_000) < 1)
        for s in splits.values():
            assert np.array_equal(s.columns["labels"], pool.labels[s.columns["source_index"]])


def test_scale_draws_follow_the_uniform_law(plan6):
    for s in plan6.splits:
        scales = s.columns["scales"]
        assert scales.dtype == np.float32
        assert scales.min() >= np.float32(0.3) and scales.max() <= np.float32(1.0)
        assert stats.kstest(scales, stats.uniform(loc=0.3, scale=0.7).cdf).pvalue > 1e-3


def test_realisations_differ(plan6):
    a, b = _by_split(plan6, 0), _by_split(plan6, 1)
    assert not np.array_equal(a["test"].columns["source_index"], b["test"].columns["source_index"])
    assert not np.array_equal(a["test"].columns["scales"], b["test"].columns["scales"])


def test_a_realisation_alone_equals_the_same_realisation_among_six(plan6, pool):
    alone = PRESET.plan(MNISTScaleParams(realisations=(3,)), pool)
    among = _by_split(plan6, 3)
    for s in alone.splits:
        name = s.group.split("/")[1]
        for column, values in s.columns.items():
            assert np.array_equal(values, among[name].columns[column]), (name, column)


def test_changing_the_seed_changes_everything(pool):
    a = PRESET.plan(MNISTScaleParams(realisations=(0,)), pool)
    b = PRESET.plan(MNISTScaleParams(realisations=(0,), seed=1), pool)
    assert not np.array_equal(
        a.splits[0].columns["source_index"], b.splits[0].columns["source_index"]
    )


def test_a_constant_scale_is_allowed():
    params = MNISTScaleParams(
        min_scale=0.5, max_scale=0.5, realisations=(0,), n_train=100, n_val=10, n_test=100
    )
    plan = PRESET.plan(params, Pool(1000))
    assert set(np.unique(plan.splits[0].columns["scales"])) == {np.float32(0.5)}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (dict(min_scale=0.0), "min_scale"),
        (dict(min_scale=-1.0), "min_scale"),
        (dict(max_scale=float("nan")), "max_scale"),
        (dict(min_scale=0.9, max_scale=0.5), "min_scale"),
        (dict(realisations=()), "realisations"),
        (dict(realisations=(-1,)), "realisations"),
        (dict(realisations=(1, 1)), "realisations"),
        (dict(interpolation="lanczos"), "interpolation"),
        (dict(canvas=0), "canvas"),
        (dict(n_train=0), "n_train"),
        (dict(n_val=-1), "n_val"),
        (dict(seed=-3), "seed"),
    ],
)
def test_bad_params_name_the_field(options, field):
    with pytest.raises(InvalidParameterError, match=f"^{field}: "):
        MNISTScaleParams(**options)


def test_realisation_count_must_be_positive():
    with pytest.raises(InvalidParameterError, match=r"^realisations: must be in 1..1000"):
        PRESET.make_params(realisations=0)


def test_splits_larger_than_the_pool_are_rejected():
    with pytest.raises(InvalidParameterError, match="exceeds the source pool of 1000 samples"):
        PRESET.plan(MNISTScaleParams(n_train=500, n_val=100, n_test=401), Pool(1000))


def test_params_round_trip_through_json():
    params = MNISTScaleParams(realisations=(2, 4), min_scale=0.25, interpolation="nearest")
    assert MNISTScaleParams.from_json(params.to_json()) == params


def test_per_class_counts_equal_sklearns_two_step_split(plan6, pool):
    """SESN split with train_test_split(stratify=...) twice; every split has its class counts."""
    from sklearn.model_selection import train_test_split

    trainval, test = train_test_split(
        pool.labels, train_size=12_000, test_size=50_000, stratify=pool.labels, random_state=0
    )
    train, val = train_test_split(
        trainval, train_size=10_000, test_size=2_000, stratify=trainval, random_state=0
    )
    for k in range(6):
        splits = _by_split(plan6, k)
        for name, theirs in (("train", train), ("val", val), ("test", test)):
            ours = np.bincount(splits[name].columns["labels"], minlength=10)
            assert np.array_equal(ours, np.bincount(theirs, minlength=10)), (k, name)
