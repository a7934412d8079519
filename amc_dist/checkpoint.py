"""Model checkpoints: state dict + the resolved config + metadata, written atomically and loaded with
`weights_only=True`, so a checkpoint never runs code and a half-written one never looks complete."""

from __future__ import annotations

import io
from typing import Any

import torch
from torch import nn

from amc_dist import storage

FORMAT_VERSION = 1


def save_checkpoint(url: str, model: nn.Module, config: dict[str, Any], **metadata: Any) -> None:
    payload = {
        "format": FORMAT_VERSION,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": config,
        "metadata": metadata,
    }
    with storage.atomic_write(url) as handle:
        torch.save(payload, handle)


def load_checkpoint(url: str) -> dict[str, Any]:
    """The checkpoint dict (format, state_dict, config, metadata); only tensors and plain data load."""
    payload = torch.load(io.BytesIO(storage.read_bytes(url)), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise ValueError(f"{url}: not an amc-dist checkpoint (format {FORMAT_VERSION})")
    return payload
