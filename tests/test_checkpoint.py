"""Checkpoints and run files: complete or absent, and loaded without running code."""

import io
import pickle

import pytest
import torch

from amc_dist import storage
from amc_dist.checkpoint import load_checkpoint, save_checkpoint
from amc_dist.models import build_model


@pytest.mark.parametrize("base", ["local", "memory://ckpt-test"])
def test_round_trip(tmp_path, base):
    url = storage.join(str(tmp_path) if base == "local" else base, "run", "m.pt")
    model = build_model("lenet").eval()
    save_checkpoint(url, model, {"seed": 3, "data": {"name": "mnist"}}, test_error=0.012)
    payload = load_checkpoint(url)
    assert payload["config"] == {"seed": 3, "data": {"name": "mnist"}}
    assert payload["metadata"] == {"test_error": 0.012}
    fresh = build_model("lenet").eval()
    fresh.load_state_dict(payload["state_dict"])
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(fresh(x), model(x))


@pytest.mark.parametrize("base", ["local", "memory://atomic-test"])
def test_failed_write_leaves_nothing(tmp_path, base):
    url = storage.join(str(tmp_path) if base == "local" else base, "x.bin")
    with pytest.raises(KeyboardInterrupt), storage.atomic_write(url) as handle:
        handle.write(b"half")
        raise KeyboardInterrupt
    assert not storage.exists(url)
    assert not (tmp_path / "x.bin.part").exists()


class Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_checkpoints_never_run_code(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    buffer = io.BytesIO()
    torch.save({"format": 1, "state_dict": {}, "config": Payload(), "metadata": {}}, buffer)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(str(path))
    assert "code ran" not in capsys.readouterr().out


def test_foreign_files_are_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not an amc-dist checkpoint"):
        load_checkpoint(str(path))
