"""What a step works with: the run's workspace, config, task data and event sink, and the three seams a
distributed runner replaces (`oracle`, `proxy_model`, `proxy_attacks`): in this process they build models
from stored checkpoints; on Ray they reach the oracle and proxy actors instead."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from amc_dist import storage
from amc_dist.attacks import build_attacks
from amc_dist.blackbox.budget import QueryLedger
from amc_dist.blackbox.oracle import ModelOracle, Oracle
from amc_dist.config import Config
from amc_dist.data import load_proxy_dataset
from amc_dist.data.augment import augmentation_for
from amc_dist.evaluation.robustness import AttackFn
from amc_dist.events import EventSink
from amc_dist.experiment.workspace import Workspace
from amc_dist.models import build_model_for
from amc_dist.task import Split, Task, load_task
from amc_dist.tensors import resolve_device


@dataclass
class Context:
    workspace: Workspace
    on_event: EventSink

    @property
    def config(self) -> Config:
        return self.workspace.config

    @functools.cached_property
    def task(self) -> Task:
        return load_task(self.config.data)

    @functools.cached_property
    def proxy_images(self) -> torch.Tensor:
        data = load_proxy_dataset(self.config.data.name, self.config.data.root, self.config.proxy.n_samples)
        return torch.from_numpy(data.x)

    @property
    def device(self) -> torch.device:
        return resolve_device(self.config.run.device)

    @property
    def evaluation_split(self) -> Split:
        size = self.config.experiment.eval_size
        return self.task.attack if size is None else self.task.attack.head(size)

    def target_model(self, name: str | None = None) -> nn.Module:
        """The target architecture, with the weights of checkpoint `name` if given."""
        c = self.config
        model = build_model_for(
            c.model.target, self.task.shape, self.task.num_classes, **c.model.target_kwargs
        )
        return self._load(model, name)

    def fresh_proxy(self, seed: int) -> nn.Module:
        """The attacker's architecture, freshly initialised from `seed`."""
        c = self.config
        torch.manual_seed(seed)
        model = build_model_for(c.model.proxy, self.task.shape, self.task.num_classes, **c.model.proxy_kwargs)
        return model.to(self.device)

    def augment(self):
        return augmentation_for(self.task.name) if self.config.data.augment else None

    def _load(self, model: nn.Module, name: str | None) -> nn.Module:
        model = model.to(self.device)
        return model if name is None else self.workspace.load_model(name, model)

    def query_ledger(self, campaign: str) -> QueryLedger:
        """The query count of attacker campaign `campaign`, kept in `oracle/<campaign>.json` of the run
        (read before each charge, so every oracle of the campaign, in any process, shares it)."""
        workspace, name = self.workspace, f"oracle/{campaign}.json"

        def load() -> int:
            return workspace.read_json(name)["queries"] if storage.exists(workspace.url(name)) else 0

        def save(total: int) -> None:
            workspace.write_json(name, {"campaign": campaign, "queries": total})

        return QueryLedger(campaign, self.config.proxy.query_budget, load=load, save=save)

    # ---- the seams a distributed runner replaces -------------------------------------------------

    def oracle(self, against: str, campaign: str) -> Oracle:
        """The attacker's only view of checkpoint `against`: its predictive interface, every answer
        charged to attacker campaign `campaign`'s budget."""
        model = self.target_model(against)
        return ModelOracle(model, self.config.proxy.label_noise, self.query_ledger(campaign))

    def proxy_model(self, name: str) -> nn.Module:
        """Proxy checkpoint `name` (P' or P''), e.g. as the source of a stage's adversarial examples."""
        return self._load(self.fresh_proxy(0), name)

    def proxy_attacks(self, proxy: str) -> tuple[nn.Module | None, Mapping[str, AttackFn]]:
        """The black-box attacks crafted on proxy `proxy`, as (source model, attacks): evaluation calls
        each attack with the source; a source of None means the attacks craft elsewhere (an actor)."""
        return self.proxy_model(proxy), build_attacks(self.config.attacks.blackbox)
