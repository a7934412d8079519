"""The scaling model: graph shape (critical path, width), pass counts, the list-scheduling simulation and
the check against a measured run, on hand-built graphs with known answers and on the shipped configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amc_dist import cli
from amc_dist.attacks import params_class
from amc_dist.bench import scaling
from amc_dist.config import load_config
from amc_dist.eventlog import EventLog
from amc_dist.experiment.graph import Graph, Step
from amc_dist.experiment.plan import build_graph

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _graph(needs: dict[str, tuple[str, ...]]) -> Graph:
    return Graph(Step(name, lambda ctx: None, deps, kind="evaluate") for name, deps in needs.items())


DIAMOND = {"a": (), "b": ("a",), "c": ("a",), "d": ("a",), "e": ("b", "c"), "f": ("e",)}


def test_critical_path_width_and_rounds_of_a_small_graph():
    graph = _graph(DIAMOND)
    assert scaling.critical_path(graph) == (4.0, ["a", "b", "e", "f"])
    seconds = {"a": 1, "b": 2, "c": 5, "d": 1, "e": 1, "f": 1}
    assert scaling.critical_path(graph, seconds) == (8.0, ["a", "c", "e", "f"])
    assert scaling.width(graph) == 3 and scaling.levels(graph) == [1, 3, 1, 1]


def test_width_counts_steps_at_different_depths():
    # {a1, a2} sit one step deep and {b1, b2} two: no round has all four ready, yet all four may run at once
    graph = _graph({"r": (), "a1": ("r",), "a2": ("r",), "s": (), "t": ("s",), "b1": ("t",), "b2": ("t",)})
    assert scaling.levels(graph) == [2, 3, 2]
    assert scaling.width(graph) == 4


def test_list_scheduling_runs_the_longest_path_first():
    graph = _graph(DIAMOND)
    seconds = {"a": 1.0, "b": 2.0, "c": 5.0, "d": 1.0, "e": 1.0, "f": 1.0}
    one = scaling.simulate(graph, seconds, 1)
    assert one["makespan_s"] == sum(seconds.values()) and one["utilisation"] == pytest.approx(1.0)
    two = scaling.simulate(graph, seconds, 2)  # c (on the critical path) starts at once, beside b
    assert two == {"makespan_s": 8.0, "utilisation": pytest.approx(11 / 16), "peak_steps": 2}
    assert scaling.simulate(graph, seconds, 10)["makespan_s"] == 8.0  # never below the critical path


def test_attack_passes_follow_the_budgets():
    def passes(name, **params):
        return scaling.attack_passes(params_class(name)(**params))

    assert passes("fgsm", eps=0.3) == 1
    assert passes("pgd", eps=0.3, nb_iter=15, eps_iter=0.01) == 15
    assert passes("vat", num_iterations=6) == pytest.approx(6 + scaling.FORWARD)
    ead = {"binary_search_steps": 5, "max_iterations": 8}
    assert passes("ead", **ead) == pytest.approx(40 * (1 + scaling.FORWARD))
    assert passes("PGM", nb_iter=7) == 7  # the paper's names count the same
    assert passes("apgd", n_iter=50, n_restarts=2) == 100
    demo = load_config(CONFIGS / "demo.yaml")  # a config's typed parameters, as the cost model reads them
    assert scaling.attack_passes(demo.attacks.whitebox["pgd"]) == demo.attacks.whitebox["pgd"].nb_iter


def test_split_sizes_are_the_papers():
    mnist, svhn = (scaling.sizes(load_config(CONFIGS / f"{n}.yaml")) for n in ("mnist", "svhn"))
    assert (mnist.validation, mnist.attack, mnist.test) == (2680, 1870, 4370)  # as data/splits.py says
    assert (svhn.validation, svhn.attack, svhn.test) == (4780, 3350, 7820)
    assert (mnist.train, svhn.proxy) == (60_000, 531_131)
    demo = scaling.sizes(load_config(CONFIGS / "demo.yaml"))
    assert (demo.train, demo.attack, demo.proxy) == (20_000, 200, 2000)  # its subsets and caps


def test_work_lands_where_the_steps_run():
    config = load_config(CONFIGS / "demo.yaml")
    graph, model = build_graph(config), scaling.CostModel(config)
    target = model.work(graph.steps["target"])  # 4 epochs of 20,000 images, then 100 validation forwards
    assert target == scaling.Work({"lenet": 4 * (20_000 + 100 * scaling.FORWARD)})
    at_proxy = model.work(graph.steps["at_proxy.fgsm"])  # crafted on P' on its own workers
    assert set(at_proxy.workers) == {"lenet", "proxy_cnn"} and at_proxy.actors == {}
    # FGSM is one pass per image, over the adversarial subset (3,000) only
    assert at_proxy.workers["proxy_cnn"] == 1 * 3000 * config.experiment.baseline_epochs
    fit = model.work(graph.steps["proxy.1"])  # inside its actor
    assert fit.workers == {} and set(fit.actors) == {"lenet", "proxy_cnn"}
    blackbox = model.work(graph.steps["blackbox.undefended"])
    assert set(blackbox.actors) == {"proxy_cnn"} and set(blackbox.workers) == {"lenet"}
    assert model.work(graph.steps["report"]) == scaling.Work()
    full, plain = model.work(graph.steps["eval.undefended"]), model.work(graph.steps["eval.at_fgsm"])
    assert full.workers["lenet"] > 3 * plain.workers["lenet"]  # squeezing, BPDA and the smell tests
    assert set(full.workers) == {"lenet", "proxy_cnn"}  # its smell tests' transfer check crafts on P''
    assert set(plain.workers) == {"lenet"}  # no P'' for a white-box AT row: no smell tests


def test_the_paper_graphs_shape_and_a_cluster_never_beats_the_critical_path():
    for name in ("mnist", "svhn", "cifar10"):
        config = load_config(CONFIGS / f"{name}.yaml", ["ray.num_workers=4"])
        rates = {"gpu": scaling.GPU_RATES, "cpu": scaling.CPU_RATES}
        result = scaling.analyse(config, [2, 4, 100], rates)
        assert (result["steps"], result["critical_path_steps"], result["width"]) == (51, 12, 19)
        assert result["simulated"]["2"] is None  # a 4-worker training cannot run on 2 GPUs
        on_4, on_100 = result["simulated"]["4"], result["simulated"]["100"]
        assert on_100["makespan_s"] == pytest.approx(result["critical_path_s"])
        assert on_4["makespan_s"] >= on_100["makespan_s"] and on_4["utilisation"] <= 1


def test_the_model_is_checked_against_a_run(tmp_path):
    config = load_config(CONFIGS / "demo.yaml")
    graph, model = build_graph(config), scaling.CostModel(config)
    rates = scaling.CPU_RATES
    events = []
    for i, step in enumerate(graph):  # a run whose steps took 2 s + 3x the model's time
        work = model.work(step)
        predicted = sum(n / rates[m] for m, n in (work.workers | work.actors).items())
        events.append(
            {"id": str(i), "kind": "step_finished", "stage": step.name, "seconds": 2 + 3 * predicted}
        )
    EventLog(str(tmp_path)).append(events)
    check = scaling.check_against(str(tmp_path), config, rates)
    assert check["train"]["steps"] == 21
    assert check["train"]["fixed_s"] == pytest.approx(2) and check["train"]["scale"] == pytest.approx(3)
    assert check["train"]["r"] == pytest.approx(1)
    assert "r" not in check["fit_proxy"]  # every proxy fit costs the same: nothing to fit a line to


def test_the_command_prints_and_writes_json(tmp_path, capsys):
    out = tmp_path / "scaling.json"
    args = [str(CONFIGS / "mnist.yaml"), "--gpus", "10", "--gpu-rate", "lenet=50000", "--out", str(out)]
    assert cli.main(["bench", "scaling", *args]) == 0  # `amc bench scaling`
    report = json.loads(out.read_text())
    assert report["rates"]["gpu"]["lenet"] == 50000 and report["rates"]["cpu"] == scaling.CPU_RATES
    [result] = report["configs"].values()
    assert result["dataset"] == "mnist" and set(result["simulated"]) == {"10"}
    assert "mnist.yaml" in capsys.readouterr().out
