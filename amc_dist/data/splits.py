"""The paper's split of a test set (section 4.2), class-balanced, so target, attacker and evaluation never
share examples and no part favours a class.

The training set is used as it is. The paper splits the test set 30% validation (used by the target while
training), then 30% of the remaining 70%, i.e. 21% of the whole, for attacks, and the remaining 49% as the
held-out test set, and says "the data used at all stages is balanced class-wise". Balance caps every class
at the smallest class's count m: each class c present in the data gives validation round(0.3 m), attack
round(0.3 (m - validation)) and test the rest of m, drawn by a seeded shuffle within the class. So every
part holds the same count of every class, the parts keep the 30/21/49 proportions (up to rounding), and
the n_c - m examples a larger class has beyond m are left out. On MNIST's test set (smallest class 892)
that is 2,680 / 1,870 / 4,370 of 10,000; on SVHN's (smallest 1,595, class 1 has 5,099) 4,780 / 3,350 /
7,820 of 26,032. Within each part examples keep their original order.
"""

from __future__ import annotations

import numpy as np

from .dataset import Dataset

VALIDATION_FRACTION = 0.30
ATTACK_FRACTION_OF_REST = 0.30
PARTS = ("validation", "attack", "test")


def per_class_counts(smallest_class: int) -> tuple[int, int, int]:
    """Examples of each class in validation, attack and test when the smallest class has that many."""
    validation = round(VALIDATION_FRACTION * smallest_class)
    attack = round(ATTACK_FRACTION_OF_REST * (smallest_class - validation))
    return validation, attack, smallest_class - validation - attack


def paper_split(dataset: Dataset, seed: int = 0) -> dict[str, Dataset]:
    """The test set `dataset` split into {"validation", "attack", "test"}: disjoint, balanced, seeded."""
    rng = np.random.default_rng(seed)
    labels, sizes = np.unique(dataset.y, return_counts=True)
    bounds = np.cumsum(per_class_counts(int(sizes.min()) if len(sizes) else 0))
    chosen: dict[str, list[np.ndarray]] = {part: [np.empty(0, dtype=np.int64)] for part in PARTS}
    for label in labels:
        members = rng.permutation(np.flatnonzero(dataset.y == label))
        for part, indices in zip(PARTS, np.split(members[: bounds[-1]], bounds[:-1]), strict=True):
            chosen[part].append(indices)
    return {part: dataset.subset(np.sort(np.concatenate(chosen[part]))) for part in PARTS}
