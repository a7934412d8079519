"""A run directory (`runs/<run_id>/`, local or any fsspec URL): models, results, events, and one
completion marker per step, written last, so a rerun skips exactly the steps that finished.

Layout: `config.yaml` (the resolved config), `attempts.json`, `metrics.jsonl` (events), `models/<name>.pt`,
`partial/<step>.pt` (the epoch state of a step in progress), `results/<name>.json`,
`steps/<step>.done` (JSON: outputs and time), plus the report files at the top.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import torch
import yaml
from torch import nn

from amc_dist import storage
from amc_dist.checkpoint import load_checkpoint, save_checkpoint
from amc_dist.config import Config, ConfigError, validate_config
from amc_dist.training.trainer import rank_and_world


class Workspace:
    def __init__(self, run_dir: str, config: Config) -> None:
        self.run_dir = run_dir.rstrip("/")
        self.config = config
        self.fs, self.path = storage.filesystem(self.run_dir)

    @classmethod
    def open(cls, run_dir: str) -> Workspace:
        """An existing run, with the resolved config it was started with."""
        path = storage.join(run_dir, "config.yaml")
        if not storage.exists(path):
            raise ConfigError(f"{run_dir}: no config.yaml, so not a run directory")
        return cls(run_dir, validate_config(yaml.safe_load(storage.read_bytes(path)), path))

    def url(self, *parts: str) -> str:
        return storage.join(self.run_dir, *parts)

    # configs ------------------------------------------------------------------------------------
    def write_config(self) -> None:
        """Write the resolved config; a rerun must use the same one, or its skipped steps would lie (the
        execution sections, `run` and `ray`, may differ: where and how steps run changes no result)."""
        current = self.config.model_dump(mode="json")
        text = yaml.safe_dump(current, sort_keys=False)
        existing = self.url("config.yaml")
        if storage.exists(existing):
            previous = yaml.safe_load(storage.read_bytes(existing))
            if _experiment(previous) != _experiment(current):
                raise ValueError(
                    f"{existing} holds a different config: rerun with the same config to resume, "
                    "or choose a new --run-id"
                )
            return
        self.write_bytes("config.yaml", text.encode())

    # files --------------------------------------------------------------------------------------
    def write_bytes(self, name: str, data: bytes) -> None:
        with storage.atomic_write(self.url(name)) as handle:
            handle.write(data)

    def write_json(self, name: str, value: Any) -> None:
        self.write_bytes(name, json.dumps(value, indent=2, sort_keys=True).encode())

    def read_json(self, name: str) -> Any:
        return json.loads(storage.read_bytes(self.url(name)))

    # models -------------------------------------------------------------------------------------
    def model_url(self, name: str) -> str:
        return self.url("models", f"{name}.pt")

    def has_model(self, name: str) -> bool:
        return storage.exists(self.model_url(name))

    def save_model(self, name: str, model: nn.Module, **metadata: Any) -> None:
        save_checkpoint(self.model_url(name), model, self.config.model_dump(mode="json"), **metadata)

    def load_model(self, name: str, model: nn.Module) -> nn.Module:
        """Load stored weights into `model` (built with the right architecture) and return it in eval mode."""
        model.load_state_dict(load_checkpoint(self.model_url(name))["state_dict"])
        return model.eval()

    def epoch_store(self, step: str) -> EpochFile:
        return EpochFile(self.url("partial", f"{step.replace('/', '_')}.pt"))

    def next_attempt(self) -> int:
        """Count this start of the run: 1 for a fresh run, one more for every resume."""
        name = "attempts.json"
        attempt = (self.read_json(name)["attempts"] if storage.exists(self.url(name)) else 0) + 1
        self.write_json(name, {"attempts": attempt})
        return attempt

    # markers ------------------------------------------------------------------------------------
    def _marker(self, step: str) -> str:
        return self.url("steps", f"{step.replace('/', '_')}.done")

    def is_done(self, step: str) -> bool:
        self.fs.invalidate_cache()  # another process may have written it; object stores cache listings
        return storage.exists(self._marker(step))

    def mark_done(self, step: str, outputs: tuple[str, ...]) -> None:
        payload = {"step": step, "outputs": list(outputs), "time": time.time()}
        with storage.atomic_write(self._marker(step)) as handle:
            handle.write(json.dumps(payload).encode())
        partial = self.epoch_store(step).url
        if storage.exists(partial):
            fs, path = storage.filesystem(partial)
            fs.rm(path)


# How and where a run executes, not what it computes: a resume may change them.
EXECUTION_SECTIONS = ("run", "ray")


def _experiment(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in EXECUTION_SECTIONS}


class EpochFile:
    """`trainer.EpochStore` on a file: the last complete epoch of a step in progress."""

    def __init__(self, url: str) -> None:
        self.url = url

    def load(self) -> dict | None:
        if not storage.exists(self.url):
            return None
        return torch.load(io.BytesIO(storage.read_bytes(self.url)), map_location="cpu", weights_only=True)

    def save(self, state: dict) -> None:
        if rank_and_world()[0] != 0:
            return
        with storage.atomic_write(self.url) as handle:
            torch.save(state, handle)
