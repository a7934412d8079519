"""The step context of a Ray process: events go to the metrics hub, the oracle is an actor and the
black-box evaluation has the proxy's actor craft (a stage reads a proxy's stored weights, as in-process).
Models go on the GPU only where this process reserved one. Task data is loaded once per process and
shared by the steps that process runs."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

import ray
import torch
from torch import nn

from amc_dist import storage
from amc_dist.blackbox.oracle import Oracle
from amc_dist.config import Config, DataConfig
from amc_dist.evaluation.robustness import AttackFn
from amc_dist.events import Reporter
from amc_dist.experiment.context import Context
from amc_dist.experiment.workspace import Workspace
from amc_dist.task import Task, load_task
from amc_dist.tensors import compact


@functools.lru_cache(maxsize=2)
def _task(data: DataConfig) -> Task:
    return load_task(data)


@dataclass
class RayContext(Context):
    """`run_id` names the run's actors (and, given sinks, its events)."""

    run_id: str | None = None
    # The actors this context started, by name: held until `close` ends them (an actor whose last handle
    # goes away is stopped too, but only when the garbage collector gets to it).
    _actors: dict = field(default_factory=dict, repr=False)

    @functools.cached_property
    def task(self) -> Task:
        return _task(self.config.data)

    @property
    def device(self) -> torch.device:
        """The run's device where this process reserved a GPU, else the CPU: Ray hides no GPU from a
        process that reserved none, which would take GPU 0 unreserved (or fail on a CPU-only node)."""
        return super().device if ray.get_gpu_ids() else torch.device("cpu")

    def flush(self) -> None:
        for sink in getattr(self.on_event, "sinks", []):
            if hasattr(sink, "flush"):
                sink.flush()

    def _actor(self, start, *args):
        """The actor `start(run_id, run_dir, config, *args)` (the run's one of that name), held here."""
        key = (start, *args)
        if key not in self._actors:
            self._actors[key] = start(self.run_id, self.workspace.run_dir, self.config, *args)
        return self._actors[key]

    def oracle(self, against: str, campaign: str) -> Oracle:
        from amc_dist.distributed.actors import RemoteOracle, oracle_actor

        return RemoteOracle(self._actor(oracle_actor, against, campaign))

    def proxy_attacks(self, proxy: str) -> tuple[nn.Module | None, Mapping[str, AttackFn]]:
        from amc_dist.distributed.actors import proxy_actor

        actor = self._actor(proxy_actor, proxy)

        def crafter(attack: str) -> AttackFn:
            def craft(_model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
                labels = None if y is None else compact(y.cpu())
                return ray.get(actor.craft.remote(attack, compact(x.cpu()), labels)).to(x.device)

            return craft

        return None, {name: crafter(name) for name in self.config.attacks.blackbox}

    def close(self) -> None:
        """End the actors this context started: what the step that used them no longer needs."""
        from amc_dist.distributed.actors import end_actor

        for actor in self._actors.values():
            end_actor(actor)
        self._actors.clear()


def ray_context(run_dir: str, config: Config, run_id: str | None, events: bool = True) -> RayContext:
    """A context whose events go to the metrics hub (nowhere without `events` or a `run_id`)."""
    from amc_dist.distributed.hub import HubSink, hub

    storage.configure(config.run.s3_endpoint)
    sinks = [HubSink(hub(), run_id, run_dir)] if events and run_id is not None else []
    return RayContext(Workspace(run_dir, config), Reporter(run_id or "", sinks), run_id)
