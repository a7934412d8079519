"""Adversarial training (Algorithm 1) through the mixture perturber: split, pairing, source, weights."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from amc_dist.attacks import build_attack
from amc_dist.config import TrainingConfig
from amc_dist.data import load_dataset
from amc_dist.models import build_model
from amc_dist.training.adversarial import AdversarialMixture
from amc_dist.training.trainer import fit, loss_terms


class Recorder:
    """An attack that returns its input shifted by a tag and remembers the model it was given."""

    def __init__(self, tag):
        self.tag, self.models, self.labels = tag, [], []

    def __call__(self, model, x, y=None):
        self.models.append(model)
        self.labels.append(y)
        return x + self.tag


def indexed_batch(n=100):
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2) / 1000
    return x, torch.arange(n)


def test_parts_are_split_by_share_and_keep_their_labels():
    attacks = [Recorder(10.0), Recorder(20.0), Recorder(30.0)]
    mixture = AdversarialMixture(attacks, [0.1, 0.1, 0.8], seed=0)
    x, y = indexed_batch()
    parts = mixture(nn.Identity(), x, y)
    assert [len(p[0]) for p in parts] == [10, 10, 80]
    assert [p[2] for p in parts] == [0.1, 0.1, 0.8]
    for tag, (x_adv, y_adv, _) in zip((10.0, 20.0, 30.0), parts, strict=True):
        # each adversarial example is paired with the label of the clean example it was made from
        assert torch.equal(((x_adv[:, 0, 0, 0] - tag) * 1000).round().long(), y_adv)
    picked = torch.cat([p[1] for p in parts])
    assert len(picked.unique()) < len(picked)  # drawn with replacement


def test_an_empty_slice_hands_its_configured_lambda_to_the_attacks_present():
    """A 5-image batch split 10/10/80 leaves the second attack no example: its lambda 0.3 goes to the
    two attacks present in proportion, so the adversarial term keeps its total weight 1 - alpha."""
    attacks = [Recorder(0.1), Recorder(0.2), Recorder(0.3)]
    mixture = AdversarialMixture(attacks, [0.1, 0.1, 0.8], [0.2, 0.3, 0.5], seed=0)
    x, y = indexed_batch(5)
    y = y % 2
    parts = mixture(nn.Identity(), x, y)
    assert [len(p[0]) for p in parts] == [1, 4]
    assert [p[2] for p in parts] == pytest.approx([0.2 / 0.7, 0.5 / 0.7])

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    loss = loss_terms(model, x, y, 0.25, lambda m, xb, yb: parts)
    (x1, y1, _), (x3, y3, _) = parts
    want = 0.25 * F.cross_entropy(model(x), y) + 0.75 * (
        2 / 7 * F.cross_entropy(model(x1), y1) + 5 / 7 * F.cross_entropy(model(x3), y3)
    )
    assert torch.allclose(loss, want)


def test_source_model_and_label_choice():
    x, y = indexed_batch(20)
    trained, proxy = nn.Identity(), nn.Identity()
    own = Recorder(0.0)
    AdversarialMixture([own], [1.0])(trained, x, y)
    assert own.models == [trained] and own.labels == [None]  # the model's own predictions, as the authors ran
    crafted = Recorder(0.0)
    AdversarialMixture([crafted], [1.0], source=proxy, attack_true_labels=True)(trained, x, y)
    assert crafted.models == [proxy] and crafted.labels[0] is not None


def test_perturbed_fraction_and_seeded_draws():
    x, y = indexed_batch(50)
    half = AdversarialMixture([Recorder(0.0)], [1.0], perturbed_fraction=0.5, seed=3)
    again = AdversarialMixture([Recorder(0.0)], [1.0], perturbed_fraction=0.5, seed=3)
    (a,) = half(nn.Identity(), x, y)
    (b,) = again(nn.Identity(), x, y)
    assert len(a[1]) == 25 and torch.equal(a[1], b[1])


def test_fgsm_training_buys_fgsm_robustness_on_real_mnist(seed):
    """LeNet on 3000 real MNIST images: FGSM training at eps 0.1 cuts the FGSM error by over 10 points."""
    data = load_dataset("mnist", "train")
    x, y = torch.from_numpy(data.x[:3000]), torch.from_numpy(data.y[:3000])
    test = load_dataset("mnist", "test")
    x_test, y_test = torch.from_numpy(test.x[:500]).float() / 255, torch.from_numpy(test.y[:500])
    settings = TrainingConfig(epochs=3, batch_size=64, optimizer="adam", learning_rate=2e-3, alpha=0.5)
    fgsm = build_attack("fgsm", eps=0.1)

    def errors(model):
        clean = (model(x_test).argmax(1) != y_test).float().mean().item()
        return clean, (model(fgsm(model, x_test, y_test)).argmax(1) != y_test).float().mean().item()

    torch.manual_seed(seed)
    plain = fit(build_model("lenet"), x, y, settings, seed=seed)
    torch.manual_seed(seed)
    hardened = fit(build_model("lenet"), x, y, settings, perturb=AdversarialMixture([fgsm], [1.0]), seed=seed)
    (plain_clean, plain_fgsm), (hard_clean, hard_fgsm) = errors(plain), errors(hardened)
    assert plain_clean < 0.1 and hard_clean < 0.1
    assert hard_fgsm < plain_fgsm - 0.1, (plain_fgsm, hard_fgsm)
