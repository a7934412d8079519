"""How the attacks behave on a real model: a LeNet trained for one epoch on MNIST (~97% test accuracy).

These are the gradient-masking smell tests of REFERENCE.md §3 turned on our own attacks: iterative beats
one-step, success goes to 100% as the budget grows, and EAD finds much sparser examples than PGD.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from amc_dist.attacks import build_attack
from amc_dist.bench import mnist_lenet, mnist_test_images

STANDARD_EAD = {"binary_search_steps": 5, "max_iterations": 100, "initial_const": 1e-3, "learning_rate": 1e-2}


@pytest.fixture(scope="module")
def lenet(seed):
    return mnist_lenet(seed=seed)


@pytest.fixture(scope="module")
def data():
    return mnist_test_images(300)


def error_rate(model, x, y) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) != y).float().mean().item()


def l1(adv, x) -> torch.Tensor:
    return (adv - x).flatten(1).abs().sum(1)


def pgd(eps: float, nb_iter: int = 10, **extra):
    return build_attack("pgd", eps=eps, eps_iter=eps / 4, nb_iter=nb_iter, seed=0, **extra)


@pytest.fixture(scope="module")
def ead_standard(lenet, data):
    x, y = data[0][:100], data[1][:100]
    return build_attack("ead", **STANDARD_EAD, abort_early=True)(lenet, x, y)


def test_the_model_is_trained(lenet, data):
    assert error_rate(lenet, *data) < 0.06


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.2])
def test_pgd_is_at_least_as_strong_as_fgsm(lenet, data, eps):
    x, y = data
    fgsm = error_rate(lenet, build_attack("fgsm", eps=eps)(lenet, x, y), y)
    assert error_rate(lenet, pgd(eps)(lenet, x, y), y) >= fgsm


def test_pgd_success_rises_to_100_percent_with_eps(lenet, data):
    x, y = data
    errors = [error_rate(lenet, pgd(eps)(lenet, x, y), y) for eps in (0.02, 0.05, 0.1, 0.2, 0.3)]
    assert all(b >= a - 0.01 for a, b in itertools.pairwise(errors)), errors
    assert errors[0] < 0.5 and errors[-1] >= 0.99, errors


def test_ead_success_rises_to_100_percent_with_its_search(lenet, data, ead_standard):
    x, y = data[0][:100], data[1][:100]
    short = build_attack("ead", **{**STANDARD_EAD, "binary_search_steps": 2, "max_iterations": 20})(
        lenet, x, y
    )
    assert error_rate(lenet, short, y) < 0.5
    assert error_rate(lenet, ead_standard, y) >= 0.98


def test_vat_success_rises_with_eps(lenet, data):
    x = data[0]
    clean = lenet(x).argmax(1)
    errors = [
        error_rate(lenet, build_attack("vat", eps=eps, xi=1.0, num_iterations=6, seed=0)(lenet, x), clean)
        for eps in (0.5, 2.0, 5.0, 8.0)
    ]
    assert all(b >= a - 0.02 for a, b in itertools.pairwise(errors)), errors
    assert errors[0] < 0.1 < errors[-1], errors


def test_ead_l1_is_far_below_pgd_at_comparable_success(lenet, data, ead_standard):
    x, y = data[0][:100], data[1][:100]
    strong = pgd(0.3, nb_iter=20)(lenet, x, y)
    assert error_rate(lenet, strong, y) >= 0.98 and error_rate(lenet, ead_standard, y) >= 0.98
    assert l1(ead_standard, x).mean() < 0.25 * l1(strong, x).mean()


def test_ead_l1_rule_never_picks_a_larger_l1_than_the_en_rule(lenet, data):
    """Both rules see the same iterates (the rule only chooses among them): per sample, L1's pick has the
    smaller L1, and the same samples succeed."""
    x, y = data[0][:150], data[1][:150]
    params = {"binary_search_steps": 4, "max_iterations": 8, "initial_const": 1e-2, "learning_rate": 0.1}
    by_en = build_attack("ead", **params, decision_rule="EN")(lenet, x, y)
    by_l1 = build_attack("ead", **params, decision_rule="L1")(lenet, x, y)
    won_en, won_l1 = lenet(by_en).argmax(1) != y, lenet(by_l1).argmax(1) != y
    assert torch.equal(won_en, won_l1) and won_en.float().mean() > 0.3
    assert (l1(by_l1, x)[won_l1] <= l1(by_en, x)[won_en] + 1e-4).all()


def test_ead_search_and_early_abort_are_per_sample(lenet, data):
    """A sample's result does not depend on the rest of its batch (peers abort the whole batch at once)."""
    x, y = data[0][:12], data[1][:12]
    attack = build_attack("ead", **{**STANDARD_EAD, "max_iterations": 30}, abort_early=True)
    together = attack(lenet, x, y)
    alone = torch.cat([attack(lenet, x[i : i + 1], y[i : i + 1]) for i in range(len(x))])
    assert torch.allclose(together, alone, atol=1e-5)
    reordered = attack(lenet, x.flip(0), y.flip(0)).flip(0)
    assert torch.allclose(together, reordered, atol=1e-5)


def test_ead_failures_return_the_input_unchanged(lenet, data):
    x, y = data[0][:60], data[1][:60]
    out = build_attack("ead", binary_search_steps=1, max_iterations=3, initial_const=3.0)(lenet, x, y)
    failed = lenet(out).argmax(1) == y
    assert 0 < failed.sum() < len(x)
    assert torch.equal(out[failed], x[failed])
    assert not torch.equal(out[~failed], x[~failed])


def test_targeted_attacks_reach_their_targets(lenet, data):
    x, y = data[0][:100], data[1][:100]
    target = (y + 1) % 10

    def hit(adv) -> float:
        return (lenet(adv).argmax(1) == target).float().mean().item()

    assert hit(pgd(0.3, nb_iter=20, targeted=True)(lenet, x, target)) >= 0.9
    ead = build_attack("ead", **{**STANDARD_EAD, "initial_const": 0.1, "max_iterations": 50}, targeted=True)
    assert hit(ead(lenet, x, target)) >= 0.9
    assert hit(build_attack("fgsm", eps=0.2, targeted=True)(lenet, x, target)) > hit(
        build_attack("fgsm", eps=0.2)(lenet, x, y)
    )


@pytest.mark.parametrize("name", ["fgsm", "pgd", "ead"])
def test_no_labels_means_the_models_own_predictions(lenet, data, name):
    x = data[0][:100]
    params = {"fgsm": {"eps": 0.1}, "pgd": {"eps": 0.1, "seed": 1}, "ead": {"max_iterations": 10}}[name]
    attack = build_attack(name, **params)
    predicted = lenet(x).argmax(1)
    assert torch.equal(attack(lenet, x), attack(lenet, x, predicted))
