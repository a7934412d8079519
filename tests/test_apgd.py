"""APGD (Croce & Hein 2020): the paper's checkpoints and DLR loss, its budget, restarts, and a cross-check
against torchattacks' APGD on a LeNet trained on real MNIST.

Cross-check tolerance: both draw the same random start from the same seed (uniform noise rescaled to
eps, as the authors' code draws it), so the success rates agree within 1 point on 500 images and at most
1% of the images differ (measured: 0-3 of 500 at 50 iterations, over seeds 0-2; torchattacks against
itself with another seed differs on 1-8). Where they differ the checkpoints do: ours follow the paper's
formula, torchattacks rounds the interval lengths down.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from amc_dist.attacks import AttackParamError, build_attack
from amc_dist.attacks.apgd import checkpoints, dlr_loss
from amc_dist.bench import mnist_lenet, mnist_test_images


@pytest.fixture(scope="module")
def lenet(seed):
    return mnist_lenet(seed=seed)


@pytest.fixture(scope="module")
def data(lenet):
    x, _ = mnist_test_images(500)
    with torch.no_grad():
        return x, lenet(x).argmax(1)  # the model's own labels, as the paper's authors attacked


def fooled(model, adv, y):
    with torch.no_grad():
        return model(adv).argmax(1) != y


def test_checkpoints_follow_the_paper():
    """p_0 = 0, p_1 = 0.22, p_j+1 = p_j + max(p_j - p_j-1 - 0.03, 0.06), w_j = ceil(p_j * n_iter)."""
    assert checkpoints(100) == {22: 22, 41: 19, 57: 16, 70: 13, 80: 10, 87: 7, 93: 6, 99: 6}
    assert list(checkpoints(1000))[:3] == [220, 410, 570]
    assert checkpoints(1) == {1: 1}
    for n_iter in (1, 2, 5, 7, 40, 333):
        marks = checkpoints(n_iter)
        assert sum(marks.values()) == max(marks) <= n_iter and min(marks.values()) >= 1


def test_dlr_loss_values_and_invariances():
    logits = torch.tensor([[4.0, 1.0, 2.0, 0.0], [1.0, 5.0, 3.0, 2.0]])
    y = torch.tensor([0, 2])
    # Row 0: correct, margin 4 - 2 over z_pi1 - z_pi3 = 4 - 1. Row 1: wrong, margin 3 - 5 over 5 - 2.
    torch.testing.assert_close(dlr_loss(logits, y), torch.tensor([-2 / 3, 2 / 3]))
    torch.testing.assert_close(dlr_loss(3.0 * logits + 7.0, y), dlr_loss(logits, y))


def test_the_parameters_are_checked():
    for params, key in (({"loss": "cw"}, "'loss'"), ({"n_iter": 0}, "'n_iter'"), ({"rho": 1.5}, "'rho'")):
        with pytest.raises(AttackParamError, match=key):
            build_attack("apgd", **params)
    two_classes = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    with pytest.raises(AttackParamError, match="at least 3 classes"):
        build_attack("apgd", loss="dlr", n_iter=2)(two_classes, torch.rand(4, 1, 8, 8))


@settings(max_examples=20, deadline=None)
@given(
    eps=st.floats(0.0, 2.0),
    ord_=st.sampled_from([math.inf, 2.0]),
    loss=st.sampled_from(["ce", "dlr"]),
    n=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_the_budget_and_the_box_hold(eps, ord_, loss, n, seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    x = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    out = build_attack("apgd", eps=eps, ord=ord_, loss=loss, n_iter=7, n_restarts=2, seed=seed)(model, x)
    delta = (out - x).flatten(1)
    norms = delta.abs().amax(1) if math.isinf(ord_) else delta.norm(dim=1)
    assert (norms <= eps * (1 + 1e-5) + 1e-6).all()
    assert out.min() >= 0 and out.max() <= 1


class RowCounter(nn.Module):
    """The model, counting the images it is shown: a restart that runs shows it the survivors again."""

    def __init__(self, model):
        super().__init__()
        self.model, self.rows = model, 0

    def forward(self, x):
        self.rows += len(x)
        return self.model(x)


def test_more_restarts_only_add_fooled_images(lenet, data, seed):
    """The invariant, not a count: whether a restart fools one more image depends on the weights (on one
    CPU 3 restarts fooled exactly the 52 of 200 that 1 did). Every image one run fools, three fool too (the
    first restart starts where a single run does); and the later restarts do run on the survivors."""
    x, y = data[0][:200], data[1][:200]
    runs = {}
    for restarts in (1, 3):
        counted = RowCounter(lenet)
        adv = build_attack("apgd", eps=0.08, n_iter=10, n_restarts=restarts, seed=seed + 1)(counted, x, y)
        runs[restarts] = fooled(lenet, adv, y), counted.rows
    (one, one_rows), (three, three_rows) = runs[1], runs[3]
    assert 0 < one.sum() < len(x)  # a budget that leaves survivors for the restarts
    assert (three >= one).all()
    assert three_rows > one_rows


def test_labels_and_already_misclassified_inputs(lenet, data):
    x, y = data[0][:100], data[1][:100]
    attack = build_attack("apgd", eps=0.1, n_iter=10, seed=0)
    assert torch.equal(attack(lenet, x), attack(lenet, x, y))  # y=None: the model's own predictions
    wrong = (y + 1) % 10  # every input is already misclassified under these labels: nothing to do
    assert torch.equal(attack(lenet, x, wrong), x)


@pytest.mark.parametrize("step", [0.01, 0.025, 0.05])
def test_needs_no_step_size_to_match_pgd(lenet, data, step):
    """At eps 0.1, 20 APGD iterations fool at least as many images as 20 PGD steps of any of eps / 10,
    eps / 4 and eps / 2 (measured: 48.3% against 45.3%, 46.0% and 42.0%)."""
    x, y = data[0][:300], data[1][:300]
    apgd = fooled(lenet, build_attack("apgd", eps=0.1, n_iter=20, seed=0)(lenet, x, y), y).float().mean()
    pgd = build_attack("pgd", eps=0.1, eps_iter=step, nb_iter=20, seed=0)
    assert apgd >= fooled(lenet, pgd(lenet, x, y), y).float().mean() + 0.01


@pytest.mark.parametrize(
    ("ord_", "eps", "loss"), [(math.inf, 0.1, "ce"), (math.inf, 0.1, "dlr"), (2.0, 1.0, "ce")]
)
def test_success_matches_torchattacks(lenet, data, ord_, eps, loss):
    torchattacks = pytest.importorskip("torchattacks")
    x, y = data
    attack = build_attack("apgd", eps=eps, ord=ord_, loss=loss, n_iter=50, seed=0)
    ours = fooled(lenet, attack(lenet, x, y), y)
    norm = "Linf" if math.isinf(ord_) else "L2"
    peer = torchattacks.APGD(lenet, norm=norm, eps=eps, steps=50, loss=loss, seed=0)
    theirs = fooled(lenet, peer(x, y), y)
    assert 0.2 < theirs.float().mean() < 0.8  # a budget where the attacks can differ
    assert abs(ours.float().mean() - theirs.float().mean()) <= 0.01 + 1e-9
    assert (ours != theirs).float().mean() <= 0.01
