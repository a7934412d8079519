"""Model training on Ray Train: a TorchTrainer fit per step. Two DDP workers with batch B each train
exactly what one worker with batch 2B trains (same examples per optimiser step, averaged gradients)."""

import sys
from pathlib import Path

import pytest
import torch
from netaudit import launch_env, run_bounded

from amc_dist import launch, storage
from amc_dist.checkpoint import load_checkpoint
from amc_dist.models import build_model_for

REPO = Path(__file__).resolve().parent.parent
TINY = str(REPO / "tests" / "configs" / "tiny.yaml")


def _train_target(tmp_path, workers: int, batch: int) -> dict:
    storage = tmp_path / f"w{workers}"
    overrides = ["ray.trainer=train", f"ray.num_workers={workers}", f"training.batch_size={batch}"]
    args = ["--config", TINY, "--storage", str(storage), "--run-id", "r", "--only", "target"]
    assert launch.main(args + [a for o in overrides for a in ("--set", o)]) == 0
    assert (storage / "r" / "ray" / "r.target").is_dir()  # Train's own storage is the run's
    return load_checkpoint(str(storage / "r" / "models" / "target.pt"))["state_dict"]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_two_ray_train_workers_match_one_with_twice_the_batch(tmp_path, ray_cluster):
    one = _train_target(tmp_path, 1, 64)
    two = _train_target(tmp_path, 2, 32)
    assert one.keys() == two.keys()
    torch.manual_seed(0)  # the target's initial weights (config seed 0): training moved them
    initial = build_model_for("lenet", (1, 28, 28), 10).state_dict()
    assert not torch.allclose(one["0.weight"], initial["0.weight"], atol=1e-4)
    for name in one:
        assert torch.allclose(one[name], two[name], atol=1e-5), name


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ray_train_keeps_its_checkpoints_in_the_runs_s3_directory(s3_server, s3_run, data_root):
    """A launch of its own (its Ray workers need the S3 variables from the start): the Train fit stores
    its checkpoints beside the run on S3, and the step's model lands there too."""
    command = [sys.executable, "-m", "amc_dist.launch", "--config", TINY, "--storage", s3_run,
               "--run-id", "t", "--only", "target", "--set", "ray.trainer=train"]  # fmt: skip
    finished = run_bounded(command, launch_env(AMC_DATA=data_root, **s3_server.env()), str(REPO), 240)
    assert finished.returncode == 0, finished.output[-4000:]
    assert storage.listdir(storage.join(s3_run, "t", "ray", "t.target")), "Ray Train stored nothing there"
    assert storage.exists(storage.join(s3_run, "t", "models", "target.pt"))
