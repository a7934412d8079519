"""The 'forgetting attacks' mixture: shares, exact counts, lambdas and the paper's data ratio."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amc_dist.training.mixture import cumulative_shares, split_counts, stage_lambdas, stage_shares


def test_stage_shares_follow_the_80_20_rule():
    assert stage_shares(1, 0.8) == [1.0]
    assert stage_shares(2, 0.8) == pytest.approx([0.2, 0.8])
    assert stage_shares(3, 0.8) == pytest.approx([0.1, 0.1, 0.8])
    assert stage_shares(4, 0.8) == pytest.approx([0.2 / 3] * 3 + [0.8])
    with pytest.raises(ValueError, match="stage must be >= 1"):
        stage_shares(0, 0.8)


def test_four_stage_ratio_of_the_stated_rule():
    """80% newest / 20% split equally gives 1.7083 : 1.2083 : 1.0833 : 1 over FGSM, VAP, EAP, PGM."""
    totals = cumulative_shares([stage_shares(k, 0.8) for k in range(1, 5)])
    ratio = [t / totals[-1] for t in totals]
    assert ratio == pytest.approx([41 / 24, 29 / 24, 26 / 24, 1.0])


def test_the_papers_ratio_comes_from_3_percent_per_earlier_attack_at_stage_4():
    """The paper's 1.6625 : 1.1625 : 1.0375 : 1 is what the same accounting gives if stage 4 handed
    each earlier attack 3% (not 20%/3): the paper's figure does not follow from its own rule."""
    paper_schedule = [[1.0], [0.2, 0.8], [0.1, 0.1, 0.8], [0.03, 0.03, 0.03, 0.8]]
    totals = cumulative_shares(paper_schedule)
    assert [t / totals[-1] for t in totals] == pytest.approx([1.6625, 1.1625, 1.0375, 1.0])


@given(st.integers(0, 5000), st.lists(st.floats(0.001, 1.0), min_size=1, max_size=6))
def test_split_counts_are_exact_and_proportional(total, shares):
    counts = split_counts(total, shares)
    assert sum(counts) == total and all(c >= 0 for c in counts)
    for count, share in zip(counts, shares, strict=True):
        assert abs(count - total * share / sum(shares)) < 1


def test_lambdas_default_to_shares_or_renormalise_configured_weights():
    assert stage_lambdas(3, [10, 10, 80], None) == pytest.approx([0.1, 0.1, 0.8])
    assert stage_lambdas(2, [20, 80], [0.1, 0.3, 0.2, 0.4]) == pytest.approx([0.25, 0.75])
    assert stage_lambdas(4, [7, 7, 6, 80], [0.1, 0.3, 0.2, 0.4]) == pytest.approx([0.1, 0.3, 0.2, 0.4])
    with pytest.raises(ValueError, match="all zero"):
        stage_lambdas(1, [5], [0.0, 1.0])


def test_configured_lambdas_renormalise_over_the_slices_present_in_the_batch():
    assert stage_lambdas(3, [1, 0, 4], [0.2, 0.3, 0.5, 0.0]) == pytest.approx([0.2 / 0.7, 0.0, 0.5 / 0.7])
    assert stage_lambdas(3, [0, 0, 4], None) == pytest.approx([0.0, 0.0, 1.0])
    # only zero-weight attacks have examples: none of them teaches, the batch keeps its clean term
    assert stage_lambdas(2, [3, 0], [0.0, 1.0, 0.0, 0.0]) == [0.0, 0.0]
