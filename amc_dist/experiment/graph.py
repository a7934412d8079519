"""A graph of named steps. Each step declares the steps whose outputs it reads; a runner executes
them in dependency order. The in-process runner is here; a Ray runner can start every step whose
inputs are complete at once (`ready`), because a step talks to others only through stored artifacts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

# What a step does, which tells a distributed runner how to schedule it: `train` fits a model (a Ray Train
# run), `fit_proxy` fits an attacker's proxy through the oracle (hosted by a proxy actor), `evaluate` scores
# a model and `report` assembles the tables.
Kind = Literal["train", "fit_proxy", "evaluate", "report"]
KINDS: tuple[Kind, ...] = ("train", "fit_proxy", "evaluate", "report")


@dataclass(frozen=True)
class Resources:
    """What one step asks of a cluster: `workers` processes, each with `cpus` CPUs and `gpus` GPUs."""

    cpus: float = 1.0
    gpus: float = 0.0
    workers: int = 1


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Any], None] = field(compare=False)
    needs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    description: str = ""
    kind: Kind = "evaluate"
    resources: Resources = Resources()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"step {self.name!r}: unknown kind {self.kind!r}; expected one of {KINDS}")


class Graph:
    """Steps with unique names, known inputs and no cycles; iteration is a topological order that
    keeps the declaration order wherever dependencies allow."""

    def __init__(self, steps: Iterable[Step]) -> None:
        self.steps: dict[str, Step] = {}
        for step in steps:
            if step.name in self.steps:
                raise ValueError(f"step {step.name!r} is declared twice")
            self.steps[step.name] = step
        for step in self.steps.values():
            unknown = [need for need in step.needs if need not in self.steps]
            if unknown:
                raise ValueError(f"step {step.name!r} needs unknown steps {unknown}")
        self.order = self._topological_order()

    def _topological_order(self) -> list[Step]:
        done: set[str] = set()
        order: list[Step] = []
        while len(order) < len(self.steps):
            ready = self.ready(done)
            if not ready:
                stuck = sorted(set(self.steps) - done)
                raise ValueError(f"steps {stuck} depend on each other in a cycle")
            order.append(ready[0])
            done.add(ready[0].name)
        return order

    def ready(self, done: set[str]) -> list[Step]:
        """Steps not yet done whose inputs are all done: what may run now, concurrently."""
        return [s for s in self.steps.values() if s.name not in done and all(n in done for n in s.needs)]

    def upstream(self, names: Iterable[str]) -> set[str]:
        """The named steps and everything they depend on."""
        seen: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name not in self.steps:
                raise ValueError(f"unknown step {name!r}; steps are {', '.join(self.steps)}")
            if name not in seen:
                seen.add(name)
                stack.extend(self.steps[name].needs)
        return seen

    def dependants(self, name: str) -> set[str]:
        """Every step that needs `name`, directly or through others: what a failure of `name` stops."""
        found: set[str] = set()
        frontier = {name}
        while frontier:
            frontier = {s.name for s in self.steps.values() if frontier & set(s.needs)} - found
            found |= frontier
        return found

    def __iter__(self):
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.steps)
