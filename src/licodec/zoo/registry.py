"""One registry of model architectures; it knows no model.

Every architecture is registered under a stable string id by its family's own
module (``licodec/models/<family>.py``), together with what only the family
knows: the authors' training recipe and the filter that adapts the authors'
checkpoints. The id is what the bitstream container and the weight configs
store, so it must never change once released; never derive it from
registration order.

This module imports no model: :mod:`licodec.models` imports the families (which
registers them) and re-exports :func:`create_model`, :func:`get_spec` and
:func:`list_models`; use those.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor, nn

__all__ = [
    "MS_SSIM_LAMBDAS",
    "CheckpointFilter",
    "ModelSpec",
    "TrainRecipe",
    "create_model",
    "get_spec",
    "list_models",
    "register_model",
]

#: The MS-SSIM λ of qualities 1..6 that all three papers train with (CompressAI's table).
MS_SSIM_LAMBDAS = (2.40, 4.58, 8.73, 16.64, 31.73, 60.50)

#: ``filter(state_dict, model) -> state_dict``: what a family changes in an authors'
#: checkpoint before the strict load (timm's ``checkpoint_filter_fn``).
CheckpointFilter = Callable[[dict[str, "Tensor"], "nn.Module"], dict[str, "Tensor"]]


@dataclass(frozen=True)
class TrainRecipe:
    """How the authors trained a family: λ of qualities 1..6 per metric, and the settings
    a training run starts from (the lowest-priority config layer)."""

    lambdas: Mapping[str, tuple[float, ...]]
    settings: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "lambdas", MappingProxyType(dict(self.lambdas)))
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))

    def with_settings(self, **changes: Any) -> TrainRecipe:
        """The same recipe with some settings changed (e.g. a smaller batch for a lite size)."""
        return replace(self, settings={**self.settings, **changes})


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one architecture variant."""

    name: str
    builder: Callable[..., nn.Module]
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    paper: str = ""
    recipe: TrainRecipe | None = None
    checkpoint_filter: CheckpointFilter | None = None
    #: Decode working memory per padded pixel, bytes (None: not measured; the decoder's
    #: memory limit then assumes the worst). Measured as the growth of ``Codec.decode``'s
    #: peak resident memory between two tile sizes (256 and 1024; full-size models 256 and
    #: 512), one thread, portable files, weights and their float64 copy excluded, times
    #: 1.25; tests/test_hostile.py checks that the estimate is an upper bound.
    memory_per_pixel: int | None = None


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    builder: Callable[..., nn.Module],
    description: str = "",
    paper: str = "",
    *,
    recipe: TrainRecipe | None = None,
    checkpoint_filter: CheckpointFilter | None = None,
    memory_per_pixel: int | None = None,
    **kwargs: Any,
) -> None:
    """Register ``builder(**kwargs)`` under ``name`` (a stable id)."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = ModelSpec(
        name,
        builder,
        dict(kwargs),
        description,
        paper,
        recipe,
        checkpoint_filter,
        memory_per_pixel,
    )


def list_models() -> list[str]:
    """Names of every registered architecture, sorted."""
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none (import licodec.models to register them)"
        raise KeyError(f"unknown model {name!r}; known models: {known}") from None


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build the registered architecture ``name``; ``overrides`` replace its kwargs."""
    spec = get_spec(name)
    kwargs = {**spec.kwargs, **overrides}
    model = spec.builder(**kwargs)
    model.arch = name  # type: ignore[assignment]
    model.config = kwargs  # type: ignore[assignment]
    return model
