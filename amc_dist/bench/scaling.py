"""`amc bench scaling`: how far the experiment graph spreads over a cluster, per config.

- Shape: the longest chain of needs (critical path, in steps) and the width, the most steps that can ever
  run at once (the largest set of steps none of which needs another, directly or not).
- Cost: each step's work in image gradient passes (one forward+backward of one image through a model;
  a forward pass alone counts `FORWARD`), from the config's epochs, data sizes and attack budgets. Over a
  per-model throughput (images/s; assumed GPU figures unless given) plus a fixed start cost per step,
  that is seconds.
- Simulation: list scheduling on N GPUs, the step with the longest remaining path first, each step
  holding its `ray` workers' GPUs: the makespan, the critical path in seconds and the busiest moment.

The cost model is a model: `docs/scaling.md` checks it against a measured run and states its assumptions.
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amc_dist.attacks import AttackParams, attack_for
from amc_dist.config import Config, load_config
from amc_dist.data.splits import per_class_counts
from amc_dist.evaluation.smell import SMELL_SIZE
from amc_dist.evaluation.worst_case import strong_attacks
from amc_dist.experiment.evaluate import FULL_REPORT_ROWS
from amc_dist.experiment.graph import Graph, Step
from amc_dist.experiment.plan import build_graph
from amc_dist.experiment.rows import blackbox_rows
from amc_dist.training.cost import FORWARD

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

# Training images, smallest class of the test set (the paper split's unit), attacker's own images.
DATASETS = {
    "mnist": {"train": 60_000, "smallest_test_class": 892, "proxy": 60_000},
    "svhn": {"train": 73_257, "smallest_test_class": 1_595, "proxy": 531_131},
    "cifar10": {"train": 50_000, "smallest_test_class": 1_000, "proxy": 11_700},
}
# Assumed forward+backward images/s of one GPU of the A10G/V100 class at batch 128 (not measured here):
# LeNet and the proxy CNN are launch-bound, ResNet-32 is about 0.2 GFLOP per image trained.
GPU_RATES = {"lenet": 100_000.0, "proxy_cnn": 100_000.0, "resnet32": 10_000.0}
# Input-gradient images/s on 2 CPU cores, what an oracle or proxy actor gets (they reserve no CPU and no
# GPU): LeNet and ResNet-32 measured (docs/benchmarks.md, FGSM = one pass); the proxy CNN's from its
# measured speed relative to ResNet-32 (8-9.5x, on a loaded machine).
CPU_RATES = {"lenet": 12_000.0, "proxy_cnn": 3_500.0, "resnet32": 450.0}
# Fixed cost of starting a step (measured on the 2-core development machine: a Ray Train fit 14-19 s
# with a 0.2 s health check; a plain Ray task a few seconds; a proxy fit starts its actor and the
# oracle's, each loading the task's data).
START_SECONDS = {"train": 15.0, "fit_proxy": 15.0, "evaluate": 3.0, "report": 3.0}


@dataclass(frozen=True)
class Work:
    """Gradient passes per model: on the step's own workers (GPUs on a GPU cluster) and in the oracle and
    proxy actors it calls (CPU)."""

    workers: dict[str, float] = field(default_factory=dict)
    actors: dict[str, float] = field(default_factory=dict)


def attack_passes(p: AttackParams) -> float:
    """Gradient passes per image of one attack at its typed parameters `p` (a config's): its full
    iteration budget (EAD usually stops earlier; docs/benchmarks.md measured 10.4 + 9.4 forward of a 4x8
    budget at the paper's MNIST setting; APGD drops each image once it is fooled)."""
    name = attack_for(p).name
    if name == "fgsm":
        return 1.0
    if name == "pgd":
        return p.nb_iter + (FORWARD if p.keep_best else 0.0)  # keep_best scores the last step
    if name == "vat":
        return p.num_iterations + FORWARD  # the clean prediction, then one gradient per power iteration
    if name == "ead":
        return p.binary_search_steps * p.max_iterations * (1 + FORWARD)  # a gradient and a forward a step
    if name == "apgd":
        return float(p.n_iter * p.n_restarts)
    if name == "apgd_t":
        return float(p.n_iter * p.n_restarts * p.n_targets)
    if name == "square":
        return (1 + p.n_queries) * FORWARD
    raise ValueError(f"no pass count for attack {name!r}: add one here")


def _passes(attack: Any) -> float:
    """An attack's passes per image; a suite's, every stage at its full budget on every image (an upper
    bound: each stage runs only on the images the ones before left)."""
    stages = getattr(attack, "stages", None)
    if stages is None:
        return attack_passes(attack.params)
    return sum(attack_passes(stage.attack.params) for stage in stages.values())


@dataclass(frozen=True)
class Sizes:
    """The images each kind of work sees under a config (its subsets and caps applied)."""

    train: int
    validation: int
    attack: int
    test: int
    proxy: int


def sizes(config: Config) -> Sizes:
    name = config.data.name
    if name not in DATASETS:
        raise ValueError(f"no sizes for dataset {name!r}: known are {', '.join(DATASETS)}")
    known = DATASETS[name]
    classes = 10  # all three datasets; the split keeps every class at the smallest one's count
    validation, attack, test = (classes * n for n in per_class_counts(known["smallest_test_class"]))
    train = min(known["train"], config.data.train_subset or known["train"])
    evaluated = min(attack, config.experiment.eval_size or attack)
    return Sizes(train, validation, evaluated, test, config.proxy.n_samples or known["proxy"])


class CostModel:
    """Each step's work, in gradient passes per model, under one config."""

    def __init__(self, config: Config) -> None:
        self.c, self.n = config, sizes(config)
        self.target, self.proxy = config.model.target, config.model.proxy

    def _mix(self, attacks: tuple[str, ...], shares: tuple[float, ...], setting: str) -> float:
        params = getattr(self.c.attacks, setting)
        return sum(share * attack_passes(params[a]) for a, share in zip(attacks, shares, strict=True))

    def _epoch_eval(self, attacks: tuple[str, ...]) -> float:
        """After each epoch: clean and per-attack white-box validation error on `eval_size` images."""
        images = min(self.c.training.eval_size, self.n.validation)
        return images * (FORWARD + sum(attack_passes(self.c.attacks.whitebox[a]) for a in attacks))

    def _training(self, step: Step) -> Work:
        training = step.run
        if training.stage is None:  # the undefended target
            epochs = self.c.training.epochs
            return Work({self.target: epochs * (self.n.train + self._epoch_eval(()))})
        stage, epochs = training.stage, training.epochs
        setting = "blackbox" if training.proxy else "whitebox"
        images = min(self.n.train, self.c.experiment.adversarial_subset or self.n.train)
        crafting = self._mix(stage.attacks, stage.shares, setting) * images * epochs
        # alpha*J(x) + (1-alpha)*J(x_adv): the clean half and the perturbed half (equal sizes)
        own = epochs * (2 * images + self._epoch_eval(stage.attacks)) + self.n.test * FORWARD
        if training.proxy:  # P' weights read once; its examples crafted on the training workers
            return Work({self.target: own, self.proxy: crafting})
        return Work({self.target: own + crafting})

    def _fit_proxy(self) -> Work:
        """Runs in the proxy's actor: the oracle's actor labels the attacker's images and the test split
        (forward passes of the target), then P' trains on them."""
        labels = (self.n.proxy + self.n.test) * FORWARD
        epochs = self.c.proxy.training.epochs
        return Work(actors={self.target: labels, self.proxy: epochs * self.n.proxy + self.n.test * FORWARD})

    def _whitebox(self, row: str) -> Work:
        """Table 1 attacks and the strong ones (strong PGD, APGD-CE, APGD-DLR) on the attack split, clean
        error on the test split. The full report (undefended, AMC target-hardened) runs them bare, squeezed
        and through BPDA, and smell-tests the model bare and through BPDA; a row with a P'' is smell-tested
        too, its transfer check crafted on the P'' (on this worker). A smell test is FGSM, then the strong
        PGD at about five budgets, on up to SMELL_SIZE images; its transfer check, FGSM and PGD again."""
        attacks = sum(attack_passes(p) for p in self.c.attacks.whitebox.values())
        strong = sum(_passes(a) for a in strong_attacks(self.c.attacks).values())
        passes = self.n.attack * (attacks + strong) + self.n.test * FORWARD
        smelled = 0
        if row in FULL_REPORT_ROWS:
            passes += self.n.attack * 2 * (attacks + strong)
            smelled = 2
        pgd, images = attack_passes(self.c.attacks.strong_pgd), min(SMELL_SIZE, self.n.attack)
        if row not in blackbox_rows(self.c):
            return Work({self.target: passes + smelled * images * (1 + 5 * pgd)})
        smelled = max(smelled, 1)  # the transfer check: FGSM and PGD crafted on P'', scored on the model
        passes += smelled * images * (1 + 5 * pgd + 2 * FORWARD)
        return Work({self.target: passes, self.proxy: smelled * images * (1 + pgd)})

    def _blackbox(self) -> Work:
        """Examples crafted by calls to P''s actor, scored on the step's own worker."""
        crafting = sum(attack_passes(p) for p in self.c.attacks.blackbox.values())
        scoring = len(self.c.attacks.blackbox) * FORWARD
        return Work({self.target: self.n.attack * scoring}, {self.proxy: self.n.attack * crafting})

    def work(self, step: Step) -> Work:
        if step.kind == "train":
            return self._training(step)
        if step.kind == "fit_proxy":
            return self._fit_proxy()
        if step.name.startswith("eval."):
            return self._whitebox(step.name.removeprefix("eval."))
        if step.name.startswith("blackbox."):
            return self._blackbox()
        return Work()  # the report reads JSON files


def holds_gpus(step: Step) -> int:
    """GPUs a step holds while it runs: one per worker; none for a proxy fit, which runs in its actor."""
    return 0 if step.kind == "fit_proxy" else max(1, step.resources.workers)


def step_seconds(graph: Graph, model: CostModel, gpu: dict[str, float], cpu: dict[str, float],
                 start: dict[str, float]) -> dict[str, float]:  # fmt: skip
    """Seconds of every step: its start cost, its workers' passes at `gpu` rates shared among its Ray Train
    workers (perfect data parallelism), and its actors' passes at `cpu` rates."""
    out = {}
    for step in graph:
        work = model.work(step)
        on_workers = sum(n / gpu[name] for name, n in work.workers.items()) / step.resources.workers
        on_actors = sum(n / cpu[name] for name, n in work.actors.items())
        out[step.name] = start[step.kind] + on_workers + on_actors
    return out


def critical_path(graph: Graph, seconds: dict[str, float] | None = None) -> tuple[float, list[str]]:
    """The longest chain of needs: its length (steps, or seconds if given) and its steps in order."""
    cost = seconds or {name: 1.0 for name in graph.steps}
    best: dict[str, tuple[float, list[str]]] = {}
    for step in graph:  # topological order: every need is settled first
        before = max((best[n] for n in step.needs), key=lambda b: b[0], default=(0.0, []))
        best[step.name] = (before[0] + cost[step.name], [*before[1], step.name])
    return max(best.values(), key=lambda b: b[0])


def width(graph: Graph) -> int:
    """The most steps that can run at once: the largest antichain of the needs order, which by Dilworth's
    theorem is the step count less a maximum matching between steps and the steps that (transitively)
    need them."""
    after = {name: graph.dependants(name) for name in graph.steps}
    match: dict[str, str] = {}

    def augment(name: str, seen: set[str]) -> bool:
        for later in after[name]:
            if later not in seen:
                seen.add(later)
                if later not in match or augment(match[later], seen):
                    match[later] = name
                    return True
        return False

    return len(graph.steps) - sum(augment(name, set()) for name in graph.steps)


def levels(graph: Graph) -> list[int]:
    """Steps ready together, round by round, when every step takes the same time and resources are
    unlimited."""
    done: set[str] = set()
    counts = []
    while len(done) < len(graph):
        ready = [s.name for s in graph.ready(done)]
        counts.append(len(ready))
        done |= set(ready)
    return counts


def simulate(graph: Graph, seconds: dict[str, float], gpus: int) -> dict[str, float]:
    """List scheduling on `gpus` GPUs: whenever GPUs are free, start the ready steps with the longest
    remaining path first, each holding `holds_gpus(step)` until it ends. Returns the makespan, the mean
    GPU utilisation and the most steps that ran at once."""
    remaining: dict[str, float] = {}
    for step in reversed(graph.order):
        later = [remaining[d] for d in graph.dependants(step.name) if step.name in graph.steps[d].needs]
        remaining[step.name] = seconds[step.name] + max(later, default=0.0)
    need = {name: holds_gpus(step) for name, step in graph.steps.items()}
    too_big = sorted(name for name, n in need.items() if n > gpus)
    if too_big:
        raise ValueError(f"steps {too_big} need more than {gpus} GPUs")
    done: set[str] = set()
    started: set[str] = set()
    running: list[tuple[float, str]] = []
    now, free, busy, peak = 0.0, gpus, 0.0, 0
    while len(done) < len(graph):
        ready = [s.name for s in graph.ready(done) if s.name not in started]
        for name in sorted(ready, key=lambda n: -remaining[n]):
            if need[name] <= free:
                free -= need[name]
                started.add(name)
                busy += need[name] * seconds[name]
                heapq.heappush(running, (now + seconds[name], name))
        peak = max(peak, len(running))
        now, name = heapq.heappop(running)
        free += need[name]
        done.add(name)
    return {"makespan_s": now, "utilisation": busy / (gpus * now) if now else 0.0, "peak_steps": peak}


def analyse(config: Config, gpus: list[int], rates: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Shape, costs and simulated makespans of one config's graph; `rates` has "gpu" and "cpu" rates."""
    graph = build_graph(config)
    seconds = step_seconds(graph, CostModel(config), rates["gpu"], rates["cpu"], START_SECONDS)
    path_s, path = critical_path(graph, seconds)
    path_steps, _ = critical_path(graph)
    widest = max(holds_gpus(step) for step in graph)  # a smaller cluster cannot run every step
    by_kind: dict[str, float] = {}
    for step in graph:
        by_kind[step.kind] = by_kind.get(step.kind, 0.0) + seconds[step.name] * max(1, holds_gpus(step))
    return {
        "dataset": config.data.name,
        "steps": len(graph),
        "critical_path_steps": int(path_steps),
        "width": width(graph),
        "ready_per_round": levels(graph),
        "critical_path_s": path_s,
        "critical_path": path,
        "step_seconds_by_kind": by_kind,
        "total_step_seconds": sum(by_kind.values()),
        "slowest_steps": sorted(seconds.items(), key=lambda item: -item[1])[:6],
        "simulated": {str(n): simulate(graph, seconds, n) if n >= widest else None for n in gpus},
    }


def _rates(defaults: dict[str, float], pairs: list[str]) -> dict[str, float]:
    rates = dict(defaults)
    for pair in pairs:
        name, _, value = pair.partition("=")
        if not value:
            raise SystemExit(f"a rate is model=images_per_second, got {pair!r}")
        rates[name] = float(value)
    return rates


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def check_against(run_dir: str, config: Config, rates: dict[str, float]) -> dict[str, dict[str, float]]:
    """The model against a run that happened: per kind, the measured step seconds (step_finished events
    of the last attempt) and the model's, everything at `rates` (a CPU-only run), with the least-squares
    line measured = fixed + scale * model and its correlation."""
    import numpy as np

    from amc_dist.eventlog import read_events

    measured = {e["stage"]: e["seconds"] for e in read_events(run_dir) if e["kind"] == "step_finished"}
    graph, model = build_graph(config), CostModel(config)
    out: dict[str, dict[str, float]] = {}
    for kind in dict.fromkeys(step.kind for step in graph):
        steps = [s for s in graph if s.kind == kind and measured.get(s.name)]
        if not steps:
            continue
        works = [model.work(s) for s in steps]
        predicted = np.array([sum(n / rates[m] for m, n in (w.workers | w.actors).items()) for w in works])
        seconds = np.array([measured[s.name] for s in steps])
        row = {"steps": len(steps), "measured_s": float(seconds.sum()), "model_s": float(predicted.sum())}
        if len(steps) > 2 and predicted.std() > 0:
            (fixed, scale), *_ = np.linalg.lstsq(
                np.c_[np.ones_like(predicted), predicted], seconds, rcond=None
            )
            r = float(np.corrcoef(predicted, seconds)[0, 1])
            row |= {"fixed_s": float(fixed), "scale": float(scale), "r": r}
        out[kind] = row
    return out


def print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="the experiment graph on N GPUs (cost model: docs/scaling.md); makespan (GPU use)")
    gpus = list(next(iter(report["configs"].values()))["simulated"])
    columns = ["config", "steps", "critical path", "width", "step time", "critical path time"]
    for column in [*columns, *(f"{n} GPUs" for n in gpus)]:
        table.add_column(column, justify="right")
    for path, r in report["configs"].items():
        sims = [
            f"{_hours(s['makespan_s'])} ({s['utilisation']:.0%})" if s else "-"
            for s in r["simulated"].values()
        ]
        shape = [str(r["steps"]), str(r["critical_path_steps"]), str(r["width"])]
        times = [_hours(r["total_step_seconds"]), _hours(r["critical_path_s"])]
        table.add_row(Path(path).name, *shape, *times, *sims)
    Console(width=160).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="amc bench scaling", description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", help="configs (default: the paper's mnist, svhn, cifar10)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. ray.num_workers=8 (repeatable)")  # fmt: skip
    parser.add_argument("--gpus", default="1,10,25,100", help="cluster sizes to simulate (1,10,25,100)")
    parser.add_argument("--gpu-rate", action="append", default=[], metavar="MODEL=IMAGES_PER_S",
                        help="forward+backward images/s of one GPU for a model (repeatable)")  # fmt: skip
    parser.add_argument("--cpu-rate", action="append", default=[], metavar="MODEL=IMAGES_PER_S",
                        help="the same for an oracle or proxy actor on CPU (repeatable)")  # fmt: skip
    parser.add_argument("--against", metavar="RUN_DIR", help="also compare the model with this CPU-only run "
                        "of the first config (its step times)")  # fmt: skip
    parser.add_argument("--out", help="write the JSON report here")
    args = parser.parse_args(argv)
    paths = args.configs or [str(CONFIGS / f"{name}.yaml") for name in DATASETS]
    gpus = [int(n) for n in args.gpus.split(",")]
    rates = {"gpu": _rates(GPU_RATES, args.gpu_rate), "cpu": _rates(CPU_RATES, args.cpu_rate)}
    report = {
        "rates": rates,
        "start_seconds": START_SECONDS,
        "overrides": args.overrides,
        "configs": {p: analyse(load_config(p, args.overrides), gpus, rates) for p in paths},
    }
    print_table(report)
    if args.against:
        report["check"] = check_against(args.against, load_config(paths[0], args.overrides), rates["cpu"])
        for kind, row in report["check"].items():
            line = f"{kind}: {row['steps']} steps, measured {row['measured_s']:.0f} s"
            line += f", model {row['model_s']:.0f} s"
            if "r" in row:
                line += f", fit {row['fixed_s']:.1f} s + {row['scale']:.2f} x model (r {row['r']:.2f})"
            print(line)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
