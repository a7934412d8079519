"""The paper's split of a test set (section 4.2), so target, attacker and evaluation never share examples.

The training set is used as it is. The test set is split per class (stratified, so every part keeps the
class balance) with a seeded shuffle: 30% validation (used by the target while training), then 30% of
the remaining 70%, i.e. 21% of the whole, reserved for attacks, and the remaining 49% held out as the test
set. Per class c with n_c examples: validation round(0.3 n_c), attack round(0.3 (n_c - validation)), test
the rest. Within each part examples keep their original order.
"""

from __future__ import annotations

import numpy as np

from .dataset import Dataset

VALIDATION_FRACTION = 0.30
ATTACK_FRACTION_OF_REST = 0.30
PARTS = ("validation", "attack", "test")


def paper_split(dataset: Dataset, seed: int = 0) -> dict[str, Dataset]:
    """The test set `dataset` split into {"validation", "attack", "test"}: disjoint, covering, stratified."""
    rng = np.random.default_rng(seed)
    chosen: dict[str, list[np.ndarray]] = {part: [np.empty(0, dtype=np.int64)] for part in PARTS}
    for label in np.unique(dataset.y):
        members = rng.permutation(np.flatnonzero(dataset.y == label))
        n_validation = round(VALIDATION_FRACTION * len(members))
        n_attack = round(ATTACK_FRACTION_OF_REST * (len(members) - n_validation))
        bounds = np.cumsum([n_validation, n_attack])
        for part, indices in zip(PARTS, np.split(members, bounds), strict=True):
            chosen[part].append(indices)
    return {part: dataset.subset(np.sort(np.concatenate(chosen[part]))) for part in PARTS}
