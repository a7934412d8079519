"""The launch-time GPU check: the GPU shares a run's steps and actors can hold at once must fit the
cluster's cards, or the launch is refused with the numbers (Ray would otherwise wait for ever, its
"cannot be scheduled" warning hidden from the driver).

Steps that only queue cannot hang a run: each ends and gives its share back. What can is holding while
waiting: a black-box evaluation holds its step's share (`ray.gpus_per_worker`) while the proxy actor it
crafts on asks for an actor's share (`ray.actor_gpus`), and a proxy actor holds its share while the
oracle actor of its fit asks for one. Up to `cap` such steps run at once; the check packs what they can
hold together onto whole cards (a share never spans two cards) and refuses when they need more cards
than the cluster has. Every step must also fit an empty cluster on its own (a training's Train workers
each on its own card).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from amc_dist.config import Config, ConfigError
from amc_dist.experiment.graph import Graph

_EPS = 1e-9


@dataclass(frozen=True)
class Holders:
    """`count` steps that may run at once, each holding the GPU shares `shares` together."""

    count: int
    shares: tuple[float, ...]
    what: str


def cards_needed(shares: Sequence[float]) -> int:
    """Whole cards that hold `shares`, by first fit, largest first (at most 11/9 of the fewest, plus one;
    Ray's own placement is no better)."""
    free: list[float] = []
    for share in sorted(shares, reverse=True):
        for i, room in enumerate(free):
            if share <= room + _EPS:
                free[i] = room - share
                break
        else:
            free.append(1.0 - share)
    return len(free)


def holders(config: Config, graph: Graph, names: Sequence[str], cap: int) -> list[Holders]:
    """The hold-and-wait steps of `names` that may run at once (at most `cap` in all), the heaviest
    first: black-box evaluations, then proxy fits."""
    r = config.ray
    if not r.use_gpu or r.actor_gpus == 0:
        return []  # actors on the CPU: no step waits for a GPU share while holding one
    kinds = [graph.steps[name] for name in names]
    blackbox = sum(1 for step in kinds if step.kind == "evaluate" and step.name.startswith("blackbox."))
    fits = sum(1 for step in kinds if step.kind == "fit_proxy")
    a, s = r.actor_gpus, r.gpus_per_worker
    found = []
    if blackbox:
        found.append(
            Holders(
                min(cap, blackbox),
                (s, a),
                f"black-box evaluations, each holding {s:g} GPU (ray.gpus_per_worker) while its proxy actor "
                f"asks {a:g} (ray.actor_gpus)",
            )
        )
    left = cap - (found[0].count if found else 0)
    if fits and left > 0:
        found.append(
            Holders(
                min(left, fits),
                (a, a),
                f"proxy fits, each a proxy actor holding {a:g} GPU while its oracle actor asks {a:g}",
            )
        )
    return found


def check_gpus(
    config: Config, graph: Graph, names: Sequence[str], node_gpus: Sequence[float], cap: int
) -> None:
    """Refuse (ConfigError, one line with the numbers) a `ray.use_gpu` launch whose GPU shares cannot be
    held on a cluster whose nodes have `node_gpus` GPUs, with up to `cap` steps at once."""
    r = config.ray
    if not r.use_gpu:
        if config.run.device.startswith("cuda"):
            raise ConfigError(
                f"run.device is {config.run.device} but ray.use_gpu is false: Ray steps reserve no GPU and "
                "run on the CPU; set ray.use_gpu=true, or run.device=auto"
            )
        return
    cards = sum(int(g + _EPS) for g in node_gpus)
    where = f"{len(node_gpus)} node(s) with {'+'.join(f'{g:g}' for g in node_gpus)} GPUs"
    if cards == 0:
        raise ConfigError(
            f"ray.use_gpu is true but this Ray cluster ({where}) has no GPUs: set ray.use_gpu=false"
        )
    widest = max(
        (graph.steps[n].resources.workers for n in names if graph.steps[n].kind == "train"), default=1
    )
    if widest > cards:
        raise ConfigError(
            f"a training's {widest} Train workers (ray.num_workers) each need a GPU of their own, but the "
            f"cluster ({where}) has {cards}"
        )
    found = holders(config, graph, names, cap)
    shares = [share for h in found for _ in range(h.count) for share in h.shares]
    need = cards_needed(shares)
    if need > cards:
        parts = "; ".join(f"{h.count} {h.what}" for h in found)
        raise ConfigError(
            f"the GPU shares this run can hold at once do not fit the cluster ({where}): up to {parts}: "
            f"{sum(shares):g} GPU in shares that need {need} whole cards, the cluster has {cards}. Lower "
            "ray.gpus_per_worker or ray.actor_gpus, or cap ray.max_concurrent_steps"
        )


def node_gpus() -> list[float]:
    """GPUs of each alive node of the connected Ray cluster."""
    import ray

    return [node["Resources"].get("GPU", 0.0) for node in ray.nodes() if node["Alive"]]
