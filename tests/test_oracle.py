"""The oracle's three predictive interfaces, its query accounting and budget, and proxies fitted to it."""

import pytest
import torch
from torch import nn

from amc_dist.blackbox.budget import QueryLedger
from amc_dist.blackbox.oracle import ModelOracle, QueryBudgetExceeded, ask
from amc_dist.blackbox.proxy import agreement, train_proxy
from amc_dist.config import TrainingConfig


def fixed_model():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]]))
        model[1].bias.zero_()
    return model


def images():
    x = torch.zeros(3, 1, 2, 2)
    x[0, 0, 0, 0], x[1, 0, 0, 1], x[2, 0, 1, 0] = 1.0, 1.0, 1.0
    return x


def test_three_interfaces():
    oracle = ModelOracle(fixed_model(), label_noise=0.3)
    x = images()
    assert torch.equal(oracle.labels(x), torch.tensor([0, 1, 2]))
    probabilities = oracle.probabilities(x)
    assert torch.allclose(probabilities.sum(1), torch.ones(3))
    assert torch.allclose(probabilities, torch.softmax(torch.eye(3), 1))
    noisy = oracle.noisy_labels(x)
    assert torch.allclose(noisy, torch.eye(3) * 0.7 + 0.1)
    assert torch.equal(ask(oracle, x, "label"), oracle.labels(x))
    with pytest.raises(ValueError, match="unknown oracle interface 'logits'"):
        ask(oracle, x, "logits")


def test_queries_are_counted_and_the_budget_enforced_before_answering():
    model = fixed_model().train()
    oracle = ModelOracle(model, ledger=QueryLedger(budget=7))
    oracle.labels(images())
    oracle.probabilities(images())
    assert oracle.queries() == 6
    with pytest.raises(QueryBudgetExceeded, match="6 of 7 used, 3 more asked"):
        oracle.noisy_labels(images())
    assert oracle.queries() == 6
    oracle.labels(images()[:1])
    assert oracle.queries() == 7
    assert model.training  # the oracle answers in eval mode and gives the mode back


@pytest.mark.parametrize("noise", [-0.1, 1.0])
def test_bad_oracle_settings(noise):
    with pytest.raises(ValueError, match="label_noise"):
        ModelOracle(fixed_model(), label_noise=noise)
    with pytest.raises(ValueError, match="query_budget must be positive"):
        QueryLedger(budget=0)


def test_the_oracles_of_one_campaign_share_its_count_and_budget():
    """P' and its re-fits query different checkpoints but spend one attacker's budget."""
    stored = {}
    ledger = QueryLedger("proxy", 8, load=lambda: stored.get("n", 0), save=lambda n: stored.update(n=n))
    first, refit = (
        ModelOracle(fixed_model(), ledger=ledger),
        ModelOracle(fixed_model().train(), ledger=ledger),
    )
    first.labels(images())
    refit.probabilities(images())
    assert first.queries() == refit.queries() == 6 and stored == {"n": 6}
    with pytest.raises(QueryBudgetExceeded, match="campaign 'proxy' exhausted: 6 of 8 used, 3 more asked"):
        refit.labels(images())
    assert stored == {"n": 6}  # refused before counting
    other = ModelOracle(fixed_model(), ledger=QueryLedger("p2.undefended", 8))  # another attacker
    other.labels(images())
    assert other.queries() == 3 and stored == {"n": 6}


@pytest.mark.parametrize("interface", ["label", "noisy_label", "probability"])
def test_a_proxy_learns_the_oracles_decisions_from_answers_alone(interface):
    torch.manual_seed(0)
    oracle = ModelOracle(fixed_model())
    x = torch.rand(600, 1, 2, 2)
    proxy = nn.Sequential(nn.Flatten(), nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    settings = TrainingConfig(epochs=30, batch_size=60, learning_rate=0.02)
    train_proxy(oracle, proxy, x, interface, settings)
    assert oracle.queries() == 600  # labelled once, then trained offline
    assert agreement(proxy, fixed_model(), torch.rand(300, 1, 2, 2)) > 0.9
    assert oracle.queries() == 600  # the defender's agreement check asks no oracle
