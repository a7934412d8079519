"""The paper's test-set split: 30% validation, 21% attack, 49% test, per class, seeded, disjoint, covering."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from amc_dist.data import Dataset, paper_split


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


def test_sizes_on_a_balanced_test_set():
    parts = paper_split(make_dataset([1000] * 10))
    assert {name: len(part) for name, part in parts.items()} == {
        "validation": 3000,
        "attack": 2100,
        "test": 4900,
    }
    for part, share in (("validation", 300), ("attack", 210), ("test", 490)):
        assert np.bincount(parts[part].y).tolist() == [share] * 10


@settings(max_examples=40, deadline=None)
@given(counts=st.lists(st.integers(0, 60), min_size=1, max_size=6), seed=st.integers(0, 2**16))
def test_stratified_disjoint_covering(counts, seed):
    data = make_dataset(counts)
    parts = paper_split(data, seed=seed)
    ids = {name: ids_of(part) for name, part in parts.items()}
    together = np.concatenate(list(ids.values()))
    assert sorted(together.tolist()) == list(range(len(data)))  # disjoint and covering
    for name, part in parts.items():
        np.testing.assert_array_equal(part.y, data.y[ids[name]])  # labels travel with images
        assert (np.diff(ids[name]) > 0).all()  # original order kept
        assert part.classes == data.classes
    for label, n in enumerate(counts):
        validation = int((parts["validation"].y == label).sum())
        attack = int((parts["attack"].y == label).sum())
        test = int((parts["test"].y == label).sum())
        assert abs(validation - 0.30 * n) <= 0.5
        assert abs(attack - 0.21 * n) <= 1.0
        assert validation + attack + test == n


def test_deterministic_under_a_seed_and_seeds_differ():
    data = make_dataset([50, 40, 30])
    first, again, other = paper_split(data, seed=7), paper_split(data, seed=7), paper_split(data, seed=8)
    for name in first:
        np.testing.assert_array_equal(ids_of(first[name]), ids_of(again[name]))
    assert any(not np.array_equal(ids_of(first[name]), ids_of(other[name])) for name in first)
    assert not np.array_equal(ids_of(paper_split(data)["test"]), ids_of(first["test"]))
