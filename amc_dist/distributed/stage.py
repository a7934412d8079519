"""A training step on Ray Train: a `TorchTrainer` fit named `<run_id>.<step>` whose workers each run the
step's `fit` on their shard (DDP over the process group Train sets up), report every epoch's state through
`ray.train.report` on every rank (the checkpoint from rank 0) and resume from `ray.train.get_checkpoint()`.
The step's `finish` (checkpoint into the workspace, test error) then runs once, where the fit was driven.
"""

from __future__ import annotations

import os
import tempfile

import ray.train
import torch
from ray.train import Checkpoint, CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from amc_dist import storage
from amc_dist.config import Config
from amc_dist.distributed.cluster import worker_env
from amc_dist.distributed.context import RayContext, ray_context
from amc_dist.experiment.steps import Training

STATE_FILE = "state.pt"


class TrainCheckpointStore:
    """`trainer.EpochStore` on Ray Train's checkpoints (called on every rank; rank 0 writes)."""

    def load(self) -> dict | None:
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as directory:
            return torch.load(os.path.join(directory, STATE_FILE), map_location="cpu", weights_only=True)

    def save(self, state: dict) -> None:
        metrics = {"epoch": state["epoch"]}
        if ray.train.get_context().get_world_rank() != 0:
            ray.train.report(metrics, checkpoint=None)
            return
        with tempfile.TemporaryDirectory() as directory:
            torch.save(state, os.path.join(directory, STATE_FILE))
            ray.train.report(metrics, checkpoint=Checkpoint.from_directory(directory))


def rank_context(loop_config: dict, rank: int) -> RayContext:
    """Rank `rank`'s context: every rank works for the run (its actors are the run's), rank 0 alone
    reports events."""
    return ray_context(loop_config["run_dir"], loop_config["config"], loop_config["run_id"], events=rank == 0)


def _train_loop(loop_config: dict) -> None:
    """One Train worker: the step's `fit` on this rank's shard."""
    ctx = rank_context(loop_config, ray.train.get_context().get_world_rank())
    try:
        loop_config["step"].fit(ctx, TrainCheckpointStore())
    finally:
        ctx.flush()
        ctx.close()


def train_on_ray_train(
    run_id: str, run_dir: str, config: Config, step: Training, max_failures: int = 1
) -> None:
    """Fit `step` as a TorchTrainer run (resuming a run of the same name), then finish it here."""
    r = config.ray
    train_fs, train_path = storage.pyarrow_filesystem(storage.join(run_dir, "ray"))
    trainer = TorchTrainer(
        _train_loop,
        train_loop_config={"run_dir": run_dir, "config": config, "run_id": run_id, "step": step},
        scaling_config=ScalingConfig(
            num_workers=r.num_workers,
            use_gpu=r.use_gpu,
            resources_per_worker={"CPU": r.cpus_per_worker}
            | ({"GPU": r.gpus_per_worker} if r.use_gpu else {}),
        ),
        run_config=RunConfig(
            name=f"{run_id}.{step.name}",
            storage_path=train_path,
            storage_filesystem=train_fs,
            failure_config=FailureConfig(max_failures=max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=1),
            worker_runtime_env={"env_vars": worker_env()},
        ),
    )
    result = trainer.fit()
    ctx = ray_context(run_dir, config, run_id)
    with result.checkpoint.as_directory() as directory:
        state = torch.load(os.path.join(directory, STATE_FILE), map_location="cpu", weights_only=True)
    model = ctx.target_model()
    model.load_state_dict(state["model"])
    step.finish(ctx, model.eval())
    ctx.flush()
