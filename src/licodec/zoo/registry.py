"""One registry of model architectures.

Every architecture is registered under a stable string id. The id is what the
bitstream container and the weight configs store, so it must never change once
released; never derive it from registration order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ModelSpec", "create_model", "get_spec", "list_models", "register_model"]


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one architecture variant."""

    name: str
    builder: Callable[..., nn.Module]
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    paper: str = ""


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    builder: Callable[..., nn.Module],
    description: str = "",
    paper: str = "",
    **kwargs: Any,
) -> None:
    """Register ``builder(**kwargs)`` under ``name`` (a stable id)."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = ModelSpec(name, builder, dict(kwargs), description, paper)


def _ensure_loaded() -> None:
    # Importing the model package registers every family; done lazily so that
    # importing licodec does no work.
    import licodec.models  # noqa: F401


def list_models() -> list[str]:
    """Names of every registered architecture, sorted."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown model {name!r}; known models: {known}") from None


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build the registered architecture ``name``; ``overrides`` replace its kwargs."""
    spec = get_spec(name)
    kwargs = {**spec.kwargs, **overrides}
    model = spec.builder(**kwargs)
    model.arch = name  # type: ignore[assignment]
    model.config = kwargs  # type: ignore[assignment]
    return model
