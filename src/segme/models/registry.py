"""A tiny model registry in the style of timm: ``@register_model`` + ``create_model(name)``."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a model constructor under its function name (lowercase)."""
    name = fn.__name__
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is registered twice")
    _REGISTRY[name] = fn
    return fn


def list_models(include_test: bool = False) -> list[str]:
    """Names of the registered models, sorted. Tiny ``test_*`` models are hidden by default."""
    return sorted(n for n in _REGISTRY if include_test or not n.startswith("test_"))


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model, e.g. ``create_model("sinet", width=1.0)``."""
    try:
        fn = _REGISTRY[name]
    except KeyError:
        known = ", ".join(list_models())
        raise ValueError(f"unknown model {name!r}; known models: {known}") from None
    try:
        model = fn(**kwargs)
    except TypeError as e:
        raise ValueError(f"bad arguments for model {name!r}: {e}") from None
    model.arch = name
    model.arch_kwargs = dict(kwargs)
    return model
