"""The 'forgetting attacks' mixture of the paper's section 3.2, and the lambda weighting of its loss.

At cascade stage k (1-based) the perturbed part of each batch is split among attacks 1..k: the newest
attack takes `newest_share` (0.8) and the rest is split equally, without overlap, among the earlier
ones; stage 1 perturbs everything with its only attack. The loss then weighs attack i's cross-entropy
by lambda_i: by default each attack's share of the perturbed part (which is what concatenating the
perturbed examples into one batch does), or fixed weights from the config renormalised over the
attacks that have examples in the batch.
"""

from __future__ import annotations

from collections.abc import Sequence


def stage_shares(stage: int, newest_share: float) -> list[float]:
    """Fractions of the perturbed part for attacks 1..stage at that stage; they sum to 1."""
    if stage < 1:
        raise ValueError(f"stage must be >= 1, got {stage}")
    if stage == 1:
        return [1.0]
    earlier = (1.0 - newest_share) / (stage - 1)
    return [earlier] * (stage - 1) + [newest_share]


def cumulative_shares(schedule: Sequence[Sequence[float]]) -> list[float]:
    """Total perturbed data each attack contributes over a run, given every stage's shares."""
    totals = [0.0] * max(len(shares) for shares in schedule)
    for shares in schedule:
        for attack, share in enumerate(shares):
            totals[attack] += share
    return totals


def split_counts(total: int, shares: Sequence[float]) -> list[int]:
    """Integer counts proportional to `shares` that sum exactly to `total` (largest remainders)."""
    exact = [total * share / sum(shares) for share in shares]
    counts = [int(value) for value in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def stage_lambdas(stage: int, counts: Sequence[int], lambdas: Sequence[float] | None) -> list[float]:
    """lambda_i for attacks 1..stage given this batch's slice `counts`: each slice's share of the
    perturbed part (None), or the configured weights renormalised over the attacks whose slice is not
    empty, so an absent attack's weight goes to those present and the adversarial term keeps its total
    weight. Should only zero-weight attacks have examples in a batch, every lambda is 0: the config
    says they teach nothing, and the batch trains on its clean term alone."""
    if lambdas is None:
        total = sum(counts)
        return [count / total for count in counts]
    configured = list(lambdas[:stage])
    if sum(configured) <= 0:
        raise ValueError(
            f"lambdas of the first {stage} attacks are all zero: stage {stage} would learn nothing"
        )
    present = [weight if count else 0.0 for weight, count in zip(configured, counts, strict=True)]
    total = sum(present)
    return [weight / total if total > 0 else 0.0 for weight in present]
