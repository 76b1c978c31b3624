"""Portable entropy parameters: a float64 copy of the modules that pick the coder's tables.

Float32 results differ by a few ulps between CPU instruction sets and torch
builds, and one scale index that lands on the other side of a table boundary
desynchronises the entropy decoder for the rest of the stream; in float64 those
differences are about 10^9 times smaller, so a file coded on one machine decodes
on another. A model declares which of its modules decide the tables
(``entropy_modules``); this module keeps their float64 copy beside the model
(never a submodule, never saved) and rebuilds it whenever a parameter changed.
"""

from __future__ import annotations

import copy
from collections.abc import MutableMapping, Sequence
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

__all__ = ["Nets", "clear_cache", "entropy_nets"]

_CACHE = "_portable_nets"


class Nets(SimpleNamespace):
    """The modules a model declares as picking the coder's tables, by name, and ``dtype``:
    the one they run in (None: the model's own)."""

    dtype: torch.dtype | None


def entropy_nets(model: nn.Module, names: Sequence[str], portable: bool) -> Nets:
    """``model``'s modules ``names`` (None where it has none), or with ``portable`` their
    float64 copy, cached in the model's ``__dict__`` until a parameter changes (in-place
    updates bump a tensor's version), so it never lags behind training or loading."""
    mods = [getattr(model, n, None) for n in names]
    if not portable:
        return Nets(**dict(zip(names, mods)), dtype=None)
    if model.training:
        raise ValueError("portable=True is for inference (call eval() first)")
    tensors = [t for m in mods if m is not None for t in (*m.parameters(), *m.buffers())]
    key = tuple((t.data_ptr(), t._version) for t in tensors)
    cached = model.__dict__.get(_CACHE)
    if cached is None or cached[0] != key:
        # Ordinary tensors even when called under inference_mode, and no autograd:
        # the copy is a function of the real parameters, never trained itself.
        with torch.inference_mode(False), torch.no_grad():
            copies = [
                None if m is None else copy.deepcopy(m).double().eval().requires_grad_(False)
                for m in mods
            ]
        cached = (key, Nets(**dict(zip(names, copies)), dtype=torch.float64))
        model.__dict__[_CACHE] = cached
    return cached[1]


def clear_cache(target: nn.Module | MutableMapping[str, Any]) -> None:
    """Drop the float64 copy (of a model, or from a state dict being pickled)."""
    state = target.__dict__ if isinstance(target, nn.Module) else target
    state.pop(_CACHE, None)
