"""The attack benchmark's bookkeeping: rows, speed-ups, pass counts, shared-L1 and the printed table."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from amc_dist.bench import mnist_lenet, mnist_test_images
from amc_dist.bench.cases import Case, cases, run_case
from amc_dist.bench.distortion import shared_l1
from amc_dist.bench.peers import PEERS, peer_attack
from amc_dist.bench.table import COLUMNS, markdown_table


@pytest.fixture(scope="module")
def lenet():
    return mnist_lenet()


@pytest.fixture(scope="module")
def x():
    return mnist_test_images(32)[0]


def test_a_case_times_ours_and_each_peer_on_the_same_inputs(lenet, x, monkeypatch):
    def broken(model, x, y, params):
        raise RuntimeError("no such setting\nsecond line")

    monkeypatch.setitem(PEERS, "broken", {"fgsm": broken})
    case = Case("lenet", "test", "fgsm", {"eps": 0.3}, repeats=1)
    ours, peer, failed = run_case(case, lenet, x, best_rate=1000.0, libraries=["torchattacks", "broken"])

    assert [row["library"] for row in (ours, peer, failed)] == ["amc-dist", "torchattacks", "broken"]
    assert failed["error"] == "RuntimeError: no such setting"
    # FGSM costs one gradient pass per example and nothing else, in both libraries.
    assert ours["grad_passes_per_ex"] == peer["grad_passes_per_ex"] == 1
    assert ours["forward_passes_per_ex"] == 0
    assert ours["limit_ex_per_s"] == pytest.approx(1000.0)
    assert ours["efficiency_vs_limit"] == pytest.approx(ours["ex_per_s"] / 1000.0)
    assert ours["fastest_peer"] == "torchattacks"
    assert ours["speedup_vs_fastest_peer"] == pytest.approx(ours["ex_per_s"] / peer["ex_per_s"])
    assert peer["ours_speedup"] == pytest.approx(ours["speedup_vs_fastest_peer"])
    # The two FGSMs are identical, so every statistic agrees.
    assert ours["success"] == peer["success"] > 0.5
    shared_ours, shared_peer = peer["l1_shared_ours_peer"]
    assert shared_ours == pytest.approx(shared_peer, rel=1e-5)
    assert ours["linf"] == pytest.approx(0.3, abs=1e-6)

    report = {"rows": [ours, peer, failed]}
    lines = markdown_table(report).splitlines()
    assert len(lines) == 5 and all(line.count("|") == len(COLUMNS) + 1 for line in lines)
    assert "no such setting" in lines[-1]


def test_shared_l1_counts_only_examples_both_attacks_turned(lenet, x):
    with torch.no_grad():
        y = lenet(x).argmax(1)
    assert shared_l1(lenet, x, x, x, y) is None  # the clean images fool nobody
    turned = peer_attack("torchattacks", "fgsm", eps=0.3)(lenet, x, y)
    half = torch.where(torch.arange(len(x))[:, None, None, None] < 16, turned, x)
    with torch.no_grad():
        both = (lenet(half).argmax(1) != y) & (lenet(turned).argmax(1) != y)
    ours, theirs = shared_l1(lenet, x, half, turned, y)
    assert (
        ours
        == pytest.approx(theirs)
        == pytest.approx((turned - x).flatten(1)[both].abs().sum(1).mean().item())
    )


def test_the_benchmark_can_pin_the_allocator_in_its_own_process():
    code = "from amc_dist.bench.timing import warm_allocator; print(warm_allocator())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"  # glibc here; elsewhere the report says the allocator was left as found


def test_apgd_is_benchmarked_against_torchattacks(lenet, x):
    pytest.importorskip("torchattacks")
    assert Case("lenet", "APGD-CE eps 0.1", "apgd", {"eps": 0.1, "n_iter": 100, "seed": 0}, repeats=1) in [
        Case(c.model, c.setting, c.attack, c.params, repeats=1) for c in cases(quick=True)
    ]
    case = Case("lenet", "test", "apgd", {"eps": 0.1, "n_iter": 20, "seed": 0}, repeats=1)
    ours, peer = run_case(case, lenet, x, best_rate=1000.0, libraries=["torchattacks"])
    assert peer["library"] == "torchattacks" and "error" not in peer
    assert ours["linf"] <= 0.1 + 1e-6 and peer["linf"] <= 0.1 + 1e-6
    assert 0 < ours["success"] < 1 and abs(ours["success"] - peer["success"]) <= 2 / len(x)
