"""The black-box side as actors: an oracle actor per target checkpoint and attacker campaign serving
only its predictive interface, and a proxy actor per proxy checkpoint (P', P'') that is trained only
through an oracle actor and then serves adversarial crafting. Named `<run_id>/<role>/<name>` in namespace
`amc`, restarted on failure; a campaign's query count lives in storage, shared by the oracle actors of
all the checkpoints it queries, so a restart neither resets nor forgets it.

Each lives only while a step needs it (its process and GPU share given back after): a proxy fit starts its
proxy's actor, which starts the oracle actor it queries and ends it when the fit is done; a black-box
evaluation starts the proxy actor it crafts on, which loads the stored weights. Stages read a proxy's
stored weights themselves."""

from __future__ import annotations

import time

import ray
import torch

from amc_dist.attacks import build_attacks
from amc_dist.config import Config
from amc_dist.distributed.cluster import NAMESPACE, worker_env
from amc_dist.experiment.context import Context
from amc_dist.experiment.steps import FitProxy
from amc_dist.tensors import compact


def actor_name(run_id: str, checkpoint: str, role: str) -> str:
    return f"{run_id}/{role}/{checkpoint}"


class OracleHost:
    """Checkpoint `checkpoint` of a run behind the three predictive interfaces, charging every image to
    attacker campaign `campaign`.

    The campaign's count (`oracle/<campaign>.json`) is read before each answer and written before it
    leaves, so the budget holds across restarts and across the checkpoints the campaign queries, and a
    retried call can only over-count.
    """

    def __init__(self, run_dir: str, config: Config, checkpoint: str, campaign: str) -> None:
        from amc_dist.distributed.context import ray_context

        self._oracle = Context.oracle(ray_context(run_dir, config, run_id=None), checkpoint, campaign)

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
            [ray.get(method.remote(compact(x[i : i + self._chunk]))) for i in range(0, len(x), self._chunk)]
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
        """Run the attacker's part of the step (its oracle is an actor; the defender's agreement check is
        `step.finish`, elsewhere); return its campaign's queries so far."""
        if step.name != self.name:
            raise ValueError(f"proxy actor {self.name!r} asked to fit {step.name!r}")
        try:
            self._model = step.fit(self.ctx)
            return self.ctx.oracle(step.against, step.campaign).queries()
        finally:
            self.ctx.flush()
            self.ctx.close()  # the fit's oracle actor is needed no more (its count is in storage)

    def _proxy(self):
        if self._model is None:  # fitted earlier (or before a restart): load the stored weights
            self._model = self.ctx.proxy_model(self.name)
        return self._model

    def craft(self, attack: str, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Adversarial examples of black-box attack `attack` crafted on this proxy (the attack moves the
        images to the proxy's device), returned on the CPU."""
        return self._attacks[attack](self._proxy(), x, y).cpu()


def _options(name: str, config: Config):
    return dict(
        name=name,
        namespace=NAMESPACE,
        get_if_exists=True,
        max_restarts=-1,
        max_task_retries=-1,
        num_cpus=0,
        # On a GPU cluster, oracle answers and crafting run on a share of a GPU (on the CPU they dominate the
        # larger datasets' critical path, docs/scaling.md).
        num_gpus=config.ray.actor_gpus if config.ray.use_gpu else 0,
        runtime_env={"env_vars": worker_env()},
    )


def oracle_actor(run_id: str, run_dir: str, config: Config, checkpoint: str, campaign: str):
    """The oracle actor of checkpoint `checkpoint` for attacker campaign `campaign`, started if it does
    not run yet."""
    name = actor_name(run_id, f"{checkpoint}@{campaign}", "oracle")
    return (
        ray.remote(OracleHost).options(**_options(name, config)).remote(run_dir, config, checkpoint, campaign)
    )


def proxy_actor(run_id: str, run_dir: str, config: Config, checkpoint: str):
    """The proxy actor of checkpoint `checkpoint`, started if it does not run yet."""
    name = actor_name(run_id, checkpoint, "proxy")
    return ray.remote(ProxyHost).options(**_options(name, config)).remote(run_dir, config, run_id, checkpoint)


def end_actor(actor, timeout: float = 30.0) -> None:
    """Stop `actor` for good and return once Ray has it dead (its name free, its resources back), so
    the next step that asks for the same name starts a fresh one instead of reaching the dying one.

    It watches the actor's state rather than calling it: a call to a killed actor with infinite task
    retries is retried, and the raylet prints every retry onto the launch's console."""
    actor_id = actor._actor_id.hex()
    ray.kill(actor)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _actor_state(actor_id) in ("DEAD", None):
            return
        time.sleep(0.05)


def _actor_state(actor_id: str) -> str | None:
    """The GCS's state of actor `actor_id` ('ALIVE', 'DEAD', ...), or None when it knows none."""
    info = ray._private.state.actors(actor_id=actor_id)
    return info.get("State") if info else None
