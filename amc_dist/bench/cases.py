"""The attack benchmark's cases (which attack, at which setting, on which model) and how one case runs.

LeNet on real MNIST test images at the paper's MNIST settings, ResNet-32 on CIFAR-shaped inputs at its
CIFAR-10 settings, and a standard strong PGD, APGD-CE and 5 x 100 EAD besides. Every contender attacks the
same model, inputs and labels (the model's own predictions, as the paper's authors attacked).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from amc_dist.attacks import PAPER_SETTINGS, build_attack
from amc_dist.bench import mnist_lenet, mnist_test_images
from amc_dist.bench.distortion import distortion_stats, shared_l1
from amc_dist.bench.peers import PEERS
from amc_dist.bench.timing import Contender, PassCounter, time_once
from amc_dist.models import build_model


@dataclass
class Case:
    model: str
    setting: str
    attack: str
    params: dict[str, Any]
    repeats: int = 3
    peer_limit: dict[str, int] = field(default_factory=dict)  # at most this many images for slow peers


PAPER_MNIST = "paper MNIST"
PAPER_CIFAR = "paper CIFAR-10"
STRONG_PGD = {"eps": 0.3, "eps_iter": 0.01, "nb_iter": 40}
# APGD-CE (Croce and Hein 2020) at AutoAttack's 100 iterations; eps 0.1, since at 0.3 LeNet falls at the
# first iterations and the timing would measure little but the setup.
APGD = {"eps": 0.1, "n_iter": 100, "seed": 0}
# The 5 x 100 EAD every peer library documents, where foolbox and advertorch ran at 9-10 ex/s on this
# project's 2-core development machine.
STANDARD_EAD = {
    "binary_search_steps": 5,
    "max_iterations": 100,
    "initial_const": 1e-3,
    "learning_rate": 1e-2,
    "beta": 1e-2,
    "abort_early": True,
}


def cases(quick: bool) -> list[Case]:
    """The paper's settings as its authors' code ran them, plus strong PGD, APGD-CE and standard EAD.

    Repeats (best of, round-robin) are many where calls are short: on a shared machine, load from
    elsewhere moves single timings by 10-30%.
    """
    art_ead = {"art": 10 if quick else 50}  # ART's EAD runs at well under 1 example/s
    fast, slow = (3, 1) if quick else (5, 2)
    paper = []
    for model, dataset, setting in (("lenet", "mnist", PAPER_MNIST), ("resnet32", "cifar10", PAPER_CIFAR)):
        for attack in ("fgsm", "pgd", "vat", "ead"):
            ead = attack == "ead"
            params = PAPER_SETTINGS[dataset][attack]
            paper.append(Case(model, setting, attack, params, slow if ead else fast, art_ead if ead else {}))
    return [
        *paper[:4],
        Case("lenet", "strong PGD", "pgd", STRONG_PGD, repeats=fast - 2),
        Case("lenet", "APGD-CE eps 0.1", "apgd", APGD, repeats=fast - 2),
        Case("lenet", "standard EAD 5x100", "ead", STANDARD_EAD, repeats=slow, peer_limit=art_ead),
        *paper[4:],
        Case("resnet32", "strong PGD", "pgd", STRONG_PGD, repeats=slow),
    ]


def workloads(quick: bool, device: torch.device) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """LeNet on real MNIST test images; a seeded, untrained ResNet-32 on uniform CIFAR-shaped inputs.

    No registry ships CIFAR-10, so the ResNet rows measure speed only: the untrained ResNet predicts one
    class for every such input, and no attack at the paper's CIFAR-10 budgets changes that.
    """
    x_mnist, _ = mnist_test_images(200 if quick else 1000)
    torch.manual_seed(0)
    resnet = build_model("resnet32", in_channels=3, num_classes=10).eval()
    x_cifar = torch.rand(32 if quick else 200, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return {
        "lenet": (mnist_lenet().to(device), x_mnist.to(device)),
        "resnet32": (resnet.to(device), x_cifar.to(device)),
    }


def run_case(
    case: Case, model: nn.Module, x: torch.Tensor, best_rate: float, libraries: list[str]
) -> list[dict]:
    """Our attack and each peer's at one setting; our row gets the speed-up and efficiency columns.

    Every contender is warmed up first (lazy imports, allocations, and a quick failure for a setting it
    cannot run); then the timed calls go round-robin, so a burst of load elsewhere on the machine hits
    every library alike, and each keeps its best time.
    """
    counter = PassCounter(model).eval()
    with torch.no_grad():
        y = model(x).argmax(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the paper's PGD settings warn about their short reach, by design
        ours = build_attack(case.attack, **case.params)
    contenders = [Contender("amc-dist", lambda a, b: ours(counter, a, b), len(x))]
    for library in libraries:
        adapter = PEERS[library].get(case.attack)
        if adapter is not None:
            run = functools.partial(lambda a, b, f: f(counter, a, b, ours.params), f=adapter)
            contenders.append(Contender(library, run, min(len(x), case.peer_limit.get(library, len(x)))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for contender in contenders:
            try:
                contender.run(x[:8], y[:8])
            except Exception as exc:  # a peer that is missing or breaks at this setting is reported
                contender.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
        for _ in range(case.repeats):
            for contender in contenders:
                if contender.error is None:
                    time_once(contender, counter, x, y)
    base = {"model": case.model, "setting": case.setting, "attack": case.attack, "params": dict(case.params)}
    rows = []
    for c in contenders:
        if c.error is not None:
            rows.append({**base, "library": c.library, "error": c.error})
            continue
        row = {
            **base,
            "library": c.library,
            "n": c.n,
            "seconds": c.best,
            "ex_per_s": c.n / c.best,
            "grad_passes_per_ex": c.passes[0] / c.n,
            "forward_passes_per_ex": c.passes[1] / c.n,
        }
        rows.append({**row, **distortion_stats(model, x[: c.n], c.adv, y[: c.n])})
    ours_row, peers = rows[0], [r for r in rows[1:] if "ex_per_s" in r]
    if peers:
        fastest = max(peers, key=lambda r: r["ex_per_s"])
        ours_row["fastest_peer"] = fastest["library"]
        ours_row["speedup_vs_fastest_peer"] = ours_row["ex_per_s"] / fastest["ex_per_s"]
    for peer in peers:
        peer["ours_speedup"] = ours_row["ex_per_s"] / peer["ex_per_s"]
    for contender, row in zip(contenders[1:], rows[1:], strict=True):
        if "ex_per_s" in row:
            n = contender.n
            row["l1_shared_ours_peer"] = shared_l1(model, x[:n], contenders[0].adv[:n], contender.adv, y[:n])
    limit = best_rate / max(ours_row["grad_passes_per_ex"], 1e-9)
    ours_row["limit_ex_per_s"] = limit
    ours_row["efficiency_vs_limit"] = ours_row["ex_per_s"] / limit
    return rows
