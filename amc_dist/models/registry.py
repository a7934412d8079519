"""Build a model from a config string: one of ours by name, or the user's own as `package.module:factory`."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable

from torch import nn

from amc_dist.models.lenet import lenet
from amc_dist.models.proxy_cnn import proxy_cnn
from amc_dist.models.resnet import resnet32

_FACTORIES: dict[str, Callable[..., nn.Module]] = {
    "lenet": lenet,
    "resnet32": resnet32,
    "proxy_cnn": proxy_cnn,
}
MODEL_NAMES = tuple(_FACTORIES)


def resolve_factory(name_or_import_path: str) -> Callable[..., nn.Module]:
    """Our factory for a known name, else import `package.module:attribute` (any callable)."""
    if name_or_import_path in _FACTORIES:
        return _FACTORIES[name_or_import_path]
    module_name, sep, attribute = name_or_import_path.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(
            f"unknown model {name_or_import_path!r}: use one of {', '.join(MODEL_NAMES)} "
            "or an import path 'package.module:factory'"
        )
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import model factory {name_or_import_path!r}: {exc}") from exc
    if not callable(factory):
        raise ValueError(f"model factory {name_or_import_path!r} is not callable")
    return factory


def build_model(name_or_import_path: str, **kwargs) -> nn.Module:
    """Build a model; keyword arguments go to its factory (e.g. in_channels, num_classes, image_size)."""
    model = resolve_factory(name_or_import_path)(**kwargs)
    if not isinstance(model, nn.Module):
        raise ValueError(
            f"model factory {name_or_import_path!r} returned {type(model).__name__}, not nn.Module"
        )
    return model


def build_model_for(
    name_or_import_path: str, shape: tuple[int, int, int], num_classes: int, **kwargs
) -> nn.Module:
    """Build a model for images of `shape` (C, H, W): in_channels, num_classes and image_size are
    read from the data and passed to factories that accept them; explicit kwargs win."""
    factory = resolve_factory(name_or_import_path)
    inferred = {"in_channels": shape[0], "num_classes": num_classes, "image_size": shape[1]}
    params = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    accepted = {k: v for k, v in inferred.items() if takes_any or k in params}
    return build_model(name_or_import_path, **{**accepted, **kwargs})
