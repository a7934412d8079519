"""Images travel as uint8 (N x C x H x W) to save memory and become float in [0, 1] only per batch."""

from __future__ import annotations

import numpy as np
import torch


def as_tensor(array: np.ndarray | torch.Tensor) -> torch.Tensor:
    return array if isinstance(array, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(array))


def to_device(x: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """`x` on `device`; a CPU tensor bound for a GPU goes through pinned memory, copied without
    holding up the host."""
    device = torch.device(device)
    if device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)


def to_unit(x: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 pixels to float32 in [0, 1], on `device` if given (moved first: uint8 is 4x fewer bytes to
    copy); float input is assumed to be in [0, 1] already."""
    x = to_device(x, device) if device is not None else x
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


# Images a forward-only pass (prediction, an oracle's answers) takes at once, by where it runs.
PREDICT_BATCH = {"cpu": 500, "gpu": 8192}


def batch_for(device: torch.device, cpu: int, gpu: int) -> int:
    """A batch size by where the work runs: what bounds a CPU's memory and cache leaves a GPU idle."""
    return gpu if device.type == "cuda" else cpu


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def module_device(model: torch.nn.Module) -> torch.device:
    """Where a model's parameters live (the CPU for a model without any)."""
    param = next(iter(model.parameters()), None)
    return param.device if param is not None else torch.device("cpu")


def compact(x: torch.Tensor) -> torch.Tensor:
    """`x` with a storage of its own size: pickling a view (a slice, a row range) ships its whole base
    storage (10 rows of a 100k-image tensor pickle to all 100k), so copy a view before it travels."""
    return x.clone() if x.untyped_storage().nbytes() > x.nelement() * x.element_size() else x
