"""`trainer.fit` inside a process group (two gloo ranks on this CPU, as Ray Train sets up): the bucketed
gradient average trains exactly what one process with twice the batch trains, BatchNorm's running
statistics end the same on every rank, and the epoch's loss is read once per report, not per step."""

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from amc_dist.config import TrainingConfig
from amc_dist.training import trainer

SEED = 3


def _model(batch_norm: bool) -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Conv2d(1, 4, 3), *([nn.BatchNorm2d(4)] if batch_norm else []), nn.ReLU(), nn.Flatten()]
    return nn.Sequential(*layers, nn.Linear(4 * 6 * 6, 10))


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (192, 1, 8, 8), dtype=torch.uint8, generator=generator)
    return x, torch.randint(0, 10, (192,), generator=generator)


def _fit(batch_norm: bool, batch: int) -> dict[str, torch.Tensor]:
    settings = TrainingConfig(epochs=2, batch_size=batch, learning_rate=1e-2)
    model = trainer.fit(_model(batch_norm), *_data(), settings, seed=SEED)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _rank(rank: int, world: int, init: str, out: str) -> None:
    torch.set_num_threads(1)  # two ranks on a shared 2-core machine
    trainer.BUCKET_BYTES = 256  # several buckets per all-reduce, as a large model has
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        torch.save({bn: _fit(bn, 16) for bn in (False, True)}, f"{out}/{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_ranks_train_what_one_trains_with_twice_the_batch_and_agree_on_batchnorm(tmp_path):
    mp.spawn(_rank, args=(2, f"file://{tmp_path}/group", str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in (0, 1)]
    single = _fit(False, 32)
    initial = _model(False).state_dict()
    assert not torch.allclose(single["0.weight"], initial["0.weight"], atol=1e-3)  # training moved it
    for name, value in single.items():
        assert torch.allclose(ranks[0][False][name], value, atol=1e-5), name
    with_bn = ranks[0][True]
    assert not torch.equal(with_bn["1.running_mean"], torch.zeros(4))
    for name, value in with_bn.items():  # parameters and running statistics, on both ranks
        assert torch.allclose(ranks[1][True][name], value, atol=1e-6), name


def test_the_loss_is_read_at_the_report_points_only(monkeypatch):
    """`.item()` makes a GPU wait for the host: once per report (and per epoch), never once per step."""
    reads = []
    item = torch.Tensor.item

    def counted(self):
        if self.grad_fn is not None:  # a loss (the optimiser's step counts live on the host anyway)
            reads.append(1)
        return item(self)

    events = []
    monkeypatch.setattr(torch.Tensor, "item", counted)
    settings = TrainingConfig(epochs=2, batch_size=1, learning_rate=1e-3)  # 192 steps an epoch
    trainer.fit(_model(False), *_data(), settings, seed=SEED, on_event=events.append)
    monkeypatch.undo()
    reports = sum(1 for e in events if e["kind"] == "progress")
    assert len(reads) <= reports < 2 * 192 / 2  # a report every third step, and one per epoch
    epoch_losses = [e["epoch_loss"] for e in events if "epoch_loss" in e]
    step_losses = [e["loss"] for e in events if "loss" in e]
    assert len(epoch_losses) == 2 and all(0 < loss < 10 for loss in epoch_losses + step_losses)
