"""The step context of a Ray process: events go to the metrics hub, the oracle is an actor, proxies live
in actors (training pulls a proxy's weights once per stage; the black-box evaluation has the proxy actor
craft). Task data is loaded once per process and shared by the steps that process runs."""

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


@functools.lru_cache(maxsize=2)
def _task(data: DataConfig) -> Task:
    return load_task(data)


@dataclass
class RayContext(Context):
    """`run_id` names the run's actors and its events; None: a context that emits nothing."""

    run_id: str | None = None
    # Oracle actor handles by (checkpoint, campaign): held for the context's life, since an actor whose
    # last handle goes away is stopped.
    _oracles: dict = field(default_factory=dict, repr=False)

    @functools.cached_property
    def task(self) -> Task:
        return _task(self.config.data)

    def flush(self) -> None:
        for sink in getattr(self.on_event, "sinks", []):
            if hasattr(sink, "flush"):
                sink.flush()

    def oracle(self, against: str, campaign: str) -> Oracle:
        from amc_dist.distributed.actors import RemoteOracle, oracle_actor

        key = (against, campaign)
        if key not in self._oracles:
            self._oracles[key] = oracle_actor(self.run_id, self.workspace.run_dir, self.config, *key)
        return RemoteOracle(self._oracles[key])

    def _proxy_actor(self, name: str):
        from amc_dist.distributed.actors import proxy_actor

        return proxy_actor(self.run_id, self.workspace.run_dir, self.config, name)

    def local_proxy_model(self, name: str) -> nn.Module:
        return Context.proxy_model(self, name)

    def proxy_model(self, name: str) -> nn.Module:
        """The proxy's weights, pulled from its actor once (a stage then crafts locally)."""
        model = self.fresh_proxy(0)
        model.load_state_dict(ray.get(self._proxy_actor(name).state_dict.remote()))
        return model.eval()

    def proxy_attacks(self, proxy: str) -> tuple[nn.Module | None, Mapping[str, AttackFn]]:
        actor = self._proxy_actor(proxy)

        def crafter(attack: str) -> AttackFn:
            def craft(_model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
                return ray.get(actor.craft.remote(attack, x.cpu(), None if y is None else y.cpu())).to(
                    x.device
                )

            return craft

        return None, {name: crafter(name) for name in self.config.attacks.blackbox}


def ray_context(run_dir: str, config: Config, run_id: str | None) -> RayContext:
    """A context whose events go to the metrics hub (or nowhere when `run_id` is None)."""
    from amc_dist.distributed.hub import HubSink, hub

    storage.configure(config.run.s3_endpoint)
    sinks = [] if run_id is None else [HubSink(hub(), run_id, run_dir)]
    return RayContext(Workspace(run_dir, config), Reporter(run_id or "", sinks), run_id)
