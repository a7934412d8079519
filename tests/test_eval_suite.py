"""The per-threat-model suite (evaluation/suite.py): each stage only on the images still robust, every
example held to its budget, cumulative columns, the gradient-masking share, seeded repeats."""

import math

import pytest
import torch
from threshold_model import Threshold
from torch import nn

from amc_dist.evaluation.budget import WithinBudget
from amc_dist.evaluation.robustness import transfer_wrong
from amc_dist.evaluation.suite import SuiteParams, ThreatSuite, cumulative, masked


class Push:
    """A fake attack: raises the first pixel of the images listed (by their first pixel's value) and
    records which images it was given."""

    def __init__(self, fools: set[float], by: float) -> None:
        self.fools, self.by, self.seen = fools, by, []

    def __call__(self, model, x, y=None):
        self.seen.append(sorted(round(v, 3) for v in x[:, 0, 0, 0].tolist()))
        out = x.clone()
        for i, value in enumerate(x[:, 0, 0, 0].tolist()):
            if round(value, 3) in self.fools:
                out[i, 0, 0, 0] += self.by
        return out


def images(values):
    x = torch.zeros(len(values), 1, 2, 2)
    x[:, 0, 0, 0] = torch.tensor(values)
    return x


def test_each_stage_attacks_only_the_images_still_robust_and_its_columns_add_up():
    suite = ThreatSuite(SuiteParams(eps=0.2, n_iter=1, n_queries=1), prefix="linf_")
    fakes = [Push({0.40}, 0.15), Push({0.41}, 0.15), Push({0.42}, 0.15)]
    suite.stages = {
        name: WithinBudget(f, math.inf, 0.2) for name, f in zip(suite.stage_names, fakes, strict=True)
    }
    x = images([0.40, 0.41, 0.42, 0.2, 0.9])  # image 4 is a clean mistake (class 1 for label 0)
    y = torch.zeros(5, dtype=torch.long)
    result = suite.run(Threshold(), x, y)
    assert fakes[0].seen == [[0.2, 0.4, 0.41, 0.42]]  # the clean mistake is not attacked
    assert fakes[1].seen == [[0.2, 0.41, 0.42]] and fakes[2].seen == [[0.2, 0.42]]
    assert result.fooled.tolist() == [True, True, True, False, True]
    assert result.stage.tolist() == [0, 1, 2, 2, -1]  # which stage's example each image holds
    wrong = transfer_wrong({"m": Threshold()}, x, y, {"linf": suite}, source=Threshold(), labels="true")["m"]
    assert list(wrong) == ["linf_apgd_ce", "linf_apgd_t", "linf_square"]
    assert [int(m.sum()) for m in wrong.values()] == [2, 3, 4]  # cumulative, clean mistake included
    errors = {k: int(m.sum()) / 5 for k, m in wrong.items()}
    assert masked(errors, suite.stage_names, suite.blackbox) == pytest.approx(1 / 5)  # only Square's
    assert suite.replaced == 0


def test_an_example_outside_the_budget_counts_as_robust_and_is_counted():
    suite = ThreatSuite(SuiteParams(eps=0.1, n_iter=1, n_queries=1))
    too_far = Push({0.45}, 0.3)
    suite.stages = {"apgd_ce": WithinBudget(too_far, math.inf, 0.1)}
    result = suite.run(Threshold(), images([0.45]), torch.tensor([0]))
    assert result.fooled.tolist() == [False] and suite.replaced == 1


def test_cumulative_masks_follow_the_stage_of_each_example():
    wrong = torch.tensor([True, True, True, False])
    stage = torch.tensor([-1, 0, 1, 1])
    masks = cumulative(wrong, stage, ("a", "b"))
    assert masks["a"].tolist() == [True, True, False, False] and masks["b"].tolist() == wrong.tolist()


def test_autoattack_defaults_by_norm_and_parameter_errors():
    for ord_, restarts, targets in (("inf", 1, 9), (2, 1, 9), (1, 5, 5)):
        p = SuiteParams(ord=ord_, eps=1.0)
        assert (p.restarts(), p.targets(), p.n_iter, p.n_queries, p.seed) == (restarts, targets, 100, 5000, 0)
    assert SuiteParams(ord=1, eps=1.0, n_restarts=2).restarts() == 2
    with pytest.raises(ValueError, match="n_iter must be at least 3 under L1"):
        SuiteParams(ord=1, eps=10.0, n_iter=2)
    with pytest.raises(ValueError, match="ord must be inf, 2 or 1"):
        SuiteParams(ord=3, eps=1.0)


@pytest.mark.parametrize(("ord_", "eps"), [("inf", 0.1), (2, 1.0), (1, 6.0)])
def test_the_suite_is_seeded_and_holds_every_example_to_its_budget(ord_, eps):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    x = torch.rand(40, 1, 8, 8)
    with torch.no_grad():
        y = model(x).argmax(1)
    params = SuiteParams(ord=ord_, eps=eps, n_iter=6, n_targets=2, n_queries=15)
    first, second = ThreatSuite(params).run(model, x, y), ThreatSuite(params).run(model, x, y)
    assert torch.equal(first.x_adv, second.x_adv) and torch.equal(first.stage, second.stage)
    distance = torch.linalg.vector_norm((first.x_adv - x).flatten(1), ord=float(ord_), dim=1)
    assert (
        bool((distance <= eps * (1 + 1e-5) + 1e-6).all()) and 0 <= first.x_adv.min() <= first.x_adv.max() <= 1
    )
    assert first.fooled.any()  # an untrained net at these budgets: some images fall
