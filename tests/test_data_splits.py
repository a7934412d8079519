"""The paper's test-set split: 30/21/49 validation/attack/test, class-balanced, seeded, disjoint."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from amc_dist.data import Dataset, load_dataset, paper_split

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
# SVHN's test set, digits 0-9: class 1 is more than three times as common as class 9.
SVHN_TEST_COUNTS = [1744, 5099, 4149, 2882, 2523, 2384, 1977, 2019, 1660, 1595]


def make_dataset(counts):
    """A dataset whose image k holds the number k (so parts can be traced back), classes of given sizes."""
    y = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(123).shuffle(y)
    n = len(y)
    ids = np.arange(n, dtype=np.int64)
    x = np.stack([(ids >> shift) & 0xFF for shift in (0, 8, 16)], axis=1).astype(np.uint8)
    return Dataset(
        "toy", x.reshape(n, 3, 1, 1), y.astype(np.int64), tuple(str(k) for k in range(len(counts)))
    )


def ids_of(part):
    x = part.x.reshape(len(part), 3).astype(np.int64)
    return x[:, 0] | (x[:, 1] << 8) | (x[:, 2] << 16)


def class_counts(parts, num_classes):
    return {name: np.bincount(part.y, minlength=num_classes).tolist() for name, part in parts.items()}


def test_sizes_on_a_balanced_test_set():
    parts = paper_split(make_dataset([1000] * 10))
    assert class_counts(parts, 10) == {"validation": [300] * 10, "attack": [210] * 10, "test": [490] * 10}


def test_an_imbalanced_set_like_svhn_gives_every_class_the_smallest_class_share():
    """Smallest class 1595: 478 + 335 + 782 of each class, the 30/21/49 proportions of 1595."""
    parts = paper_split(make_dataset(SVHN_TEST_COUNTS), seed=3)
    assert class_counts(parts, 10) == {"validation": [478] * 10, "attack": [335] * 10, "test": [782] * 10}


def test_mnist_test_set_split_sizes():
    parts = paper_split(load_dataset("mnist", "test"))
    assert np.bincount(load_dataset("mnist", "test").y).tolist() == MNIST_TEST_COUNTS
    assert class_counts(parts, 10) == {"validation": [268] * 10, "attack": [187] * 10, "test": [437] * 10}


@settings(max_examples=40, deadline=None)
@given(counts=st.lists(st.integers(1, 60), min_size=1, max_size=6), seed=st.integers(0, 2**16))
def test_balanced_disjoint_and_in_proportion(counts, seed):
    data = make_dataset(counts)
    parts = paper_split(data, seed=seed)
    ids = {name: ids_of(part) for name, part in parts.items()}
    together = np.concatenate(list(ids.values()))
    assert len(np.unique(together)) == len(together)  # disjoint
    assert set(together.tolist()) <= set(range(len(data)))
    smallest = min(counts)
    validation, attack = round(0.3 * smallest), round(0.3 * (smallest - round(0.3 * smallest)))
    expected = {"validation": validation, "attack": attack, "test": smallest - validation - attack}
    for name, part in parts.items():
        np.testing.assert_array_equal(part.y, data.y[ids[name]])  # labels travel with images
        assert (np.diff(ids[name]) > 0).all()  # original order kept
        assert part.classes == data.classes
        assert np.bincount(part.y, minlength=len(counts)).tolist() == [expected[name]] * len(counts)
    assert abs(expected["validation"] - 0.30 * smallest) <= 0.5
    assert abs(expected["attack"] - 0.21 * smallest) <= 1.0


def test_deterministic_under_a_seed_and_seeds_differ():
    data = make_dataset([50, 40, 30])
    first, again, other = paper_split(data, seed=7), paper_split(data, seed=7), paper_split(data, seed=8)
    for name in first:
        np.testing.assert_array_equal(ids_of(first[name]), ids_of(again[name]))
    assert any(not np.array_equal(ids_of(first[name]), ids_of(other[name])) for name in first)
    assert not np.array_equal(ids_of(paper_split(data)["test"]), ids_of(first["test"]))
