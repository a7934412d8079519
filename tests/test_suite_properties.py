"""Properties of the suite's attacks over random models and inputs: APGD-T never aims at the true
class, Square never asks more than its budget of queries per image, and no stage of any suite ever
produces an example outside its budget (which `WithinBudget` would silently replace: a budget bug must
fail here rather than read as robustness)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import amc_dist.attacks.apgd as apgd_module
from amc_dist.attacks import build_attack
from amc_dist.evaluation.suite import SuiteParams, ThreatSuite


def random_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 24), nn.ReLU(), nn.Linear(24, 10)).eval()


def inputs(seed: int, n: int) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 12), targets=st.integers(1, 9), true_labels=st.booleans())
def test_apgd_t_never_aims_at_the_true_class(monkeypatch_targets, seed, n, targets, true_labels):
    model, x = random_net(seed), inputs(seed, n)
    y = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(seed)) if true_labels else None
    monkeypatch_targets.clear()
    build_attack("apgd_t", eps=0.1, n_iter=3, n_targets=targets, seed=seed)(model, x, y)
    for labels, aimed in monkeypatch_targets:
        assert not bool((labels == aimed).any())


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(1, 4),
    queries=st.integers(1, 20),
    ord_=st.sampled_from(["inf", 2, 1]),
)
def test_square_asks_at_most_one_plus_its_budget_of_queries_per_image(seed, n, queries, ord_):
    model, x = random_net(seed), inputs(seed, n)
    eps = {"inf": 0.05, 2: 0.3, 1: 1.0}[ord_]  # far below the images' distances: each query names its image
    counter = Counting(model, x)
    y = model(x).argmax(1)
    build_attack("square", ord=ord_, eps=eps, n_queries=queries, seed=seed)(counter, x, y)
    assert counter.per_image.max() <= 1 + queries  # AutoAttack's count: the initial query plus the budget


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**16), ord_=st.sampled_from(["inf", 2, 1]), scale=st.floats(0.2, 3.0))
def test_no_stage_of_a_suite_ever_leaves_its_budget(seed, ord_, scale):
    eps = {"inf": 0.05, 2: 0.5, 1: 3.0}[ord_] * scale
    model, x = random_net(seed), inputs(seed, 24)
    suite = ThreatSuite(SuiteParams(ord=ord_, eps=eps, n_iter=4, n_targets=2, n_queries=8, seed=seed))
    result = suite.run(model, x, model(x).argmax(1))
    assert suite.replaced == 0
    distance = torch.linalg.vector_norm((result.x_adv - x).flatten(1), ord=float(ord_), dim=1)
    assert bool((distance <= eps * (1 + 1e-5) + 1e-6).all())  # float rounding of the projections
    assert float(result.x_adv.min()) >= 0 and float(result.x_adv.max()) <= 1


class Counting(nn.Module):
    """Counts, per clean image, the rows the model is asked about (each row matched to its nearest
    clean image: the budgets are far smaller than the distances between random images)."""

    def __init__(self, model: nn.Module, clean: torch.Tensor) -> None:
        super().__init__()
        self.model, self.clean = model, clean.flatten(1)
        self.per_image = torch.zeros(len(clean), dtype=torch.long)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nearest = torch.cdist(x.detach().flatten(1), self.clean).argmin(1)
        self.per_image += torch.bincount(nearest, minlength=len(self.clean))
        return self.model(x)


@pytest.fixture(scope="module")
def monkeypatch_targets():
    """Records (labels, targets) of every targeted DLR evaluation APGD-T makes."""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    original = apgd_module.targeted_dlr_loss

    def recording(logits, y, target):
        seen.append((y.clone(), target.clone()))
        return original(logits, y, target)

    apgd_module.targeted_dlr_loss = recording
    yield seen
    apgd_module.targeted_dlr_loss = original
