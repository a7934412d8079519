"""The black-box side as actors: an oracle actor per target checkpoint serving only its predictive
interface, and a proxy actor per proxy checkpoint (P', P'') that is trained only through an oracle actor
and then serves adversarial crafting. Named `<run_id>/<checkpoint>` in namespace `amc`, restarted on
failure; the oracle's query count lives in storage, so a restart neither resets nor forgets it."""

from __future__ import annotations

import json

import ray
import torch

from amc_dist import storage
from amc_dist.attacks import build_attacks
from amc_dist.blackbox.oracle import ModelOracle
from amc_dist.config import Config
from amc_dist.distributed.cluster import NAMESPACE, worker_env
from amc_dist.experiment.steps import FitProxy


def actor_name(run_id: str, checkpoint: str, role: str) -> str:
    return f"{run_id}/{role}/{checkpoint}"


class OracleHost:
    """Checkpoint `checkpoint` of a run behind the three predictive interfaces, counting every image.

    The count is written to `oracle/<checkpoint>.json` before each answer leaves, and read back when
    the actor (re)starts, so the budget holds across restarts and a retried call can only over-count.
    """

    def __init__(self, run_dir: str, config: Config, checkpoint: str) -> None:
        from amc_dist.distributed.context import ray_context

        ctx = ray_context(run_dir, config, run_id=None)
        self._count_url = ctx.workspace.url("oracle", f"{checkpoint}.json")
        queries = (
            json.loads(storage.read_bytes(self._count_url))["queries"]
            if storage.exists(self._count_url)
            else 0
        )
        self._oracle = ModelOracle(
            ctx.target_model(checkpoint),
            config.proxy.label_noise,
            config.proxy.query_budget,
            queries=queries,
            record=self._persist,
        )

    def _persist(self, total: int) -> None:
        with storage.atomic_write(self._count_url) as handle:
            handle.write(json.dumps({"queries": total}).encode())

    def labels(self, x: torch.Tensor) -> torch.Tensor:
        return self._oracle.labels(x)

    def noisy_labels(self, x: torch.Tensor) -> torch.Tensor:
        return self._oracle.noisy_labels(x)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return self._oracle.probabilities(x)

    def queries(self) -> int:
        return self._oracle.queries()


class RemoteOracle:
    """The `Oracle` interface over an oracle actor's handle (what the attacker's code is given). Large
    queries go in chunks of `chunk` images, so no single call carries a whole dataset (SVHN's attacker
    data is 1.6 GB)."""

    def __init__(self, handle, chunk: int = 8192) -> None:
        self._handle, self._chunk = handle, chunk

    def _ask(self, method, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [ray.get(method.remote(x[i : i + self._chunk])) for i in range(0, len(x), self._chunk)]
        )

    def labels(self, x: torch.Tensor) -> torch.Tensor:
        return self._ask(self._handle.labels, x)

    def noisy_labels(self, x: torch.Tensor) -> torch.Tensor:
        return self._ask(self._handle.noisy_labels, x)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return self._ask(self._handle.probabilities, x)

    def queries(self) -> int:
        return ray.get(self._handle.queries.remote())


class ProxyHost:
    """A proxy (P' or P''): fitted by `fit` through an oracle actor only (it is never given the target's
    weights or training labels), then serving `craft` and its weights for training workers."""

    def __init__(self, run_dir: str, config: Config, run_id: str, name: str) -> None:
        from amc_dist.distributed.context import ray_context

        self.ctx = ray_context(run_dir, config, run_id)
        self.name = name
        self._model = None
        self._attacks = build_attacks(config.attacks.blackbox)

    def fit(self, step: FitProxy) -> int:
        """Run the step (its oracle is an actor); return the oracle queries it spent."""
        if step.name != self.name:
            raise ValueError(f"proxy actor {self.name!r} asked to fit {step.name!r}")
        step(self.ctx)
        self.ctx.flush()
        self._model = None
        return self.ctx.oracle(step.against).queries()

    def _proxy(self):
        if self._model is None:  # fitted earlier (or before a restart): load the stored weights
            self._model = self.ctx.local_proxy_model(self.name)
        return self._model

    def craft(self, attack: str, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Adversarial examples of black-box attack `attack` crafted on this proxy."""
        return self._attacks[attack](self._proxy(), x, y).cpu()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.cpu() for k, v in self._proxy().state_dict().items()}


# A GPU cluster gives each oracle and proxy actor a quarter of a GPU: proxy fits and crafting then run on
# it (on the CPU they dominate the larger datasets' critical path, docs/scaling.md), and four share one.
GPU_SHARE = 0.25


def _options(name: str, config: Config):
    return dict(
        name=name,
        namespace=NAMESPACE,
        get_if_exists=True,
        max_restarts=-1,
        max_task_retries=-1,
        num_cpus=0,
        num_gpus=GPU_SHARE if config.ray.use_gpu else 0,
        runtime_env={"env_vars": worker_env()},
    )


def oracle_actor(run_id: str, run_dir: str, config: Config, checkpoint: str):
    """The oracle actor of checkpoint `checkpoint`, started if it does not run yet."""
    name = actor_name(run_id, checkpoint, "oracle")
    return ray.remote(OracleHost).options(**_options(name, config)).remote(run_dir, config, checkpoint)


def proxy_actor(run_id: str, run_dir: str, config: Config, checkpoint: str):
    """The proxy actor of checkpoint `checkpoint`, started if it does not run yet."""
    name = actor_name(run_id, checkpoint, "proxy")
    return ray.remote(ProxyHost).options(**_options(name, config)).remote(run_dir, config, run_id, checkpoint)
