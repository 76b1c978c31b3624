"""``load_model``: a shipped (or saved) model as a plain ``nn.Module``, ready to use.

The codec API (:class:`licodec.Codec`) hides the model behind files and bytes;
this is for people who want the network itself: to call ``forward`` for the
rate-distortion numbers of their own data, to fine-tune it, or to inspect it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from licodec.errors import ModelError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["load_model"]


def load_model(
    name: str | None = None,
    quality: int | None = None,
    *,
    weights: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """The model of a zoo entry or a weights file, in eval mode with its coder tables built.

    ``name`` is a model id with shipped weights (its newest version), a
    release tag such as ``wacnn-lite-v4`` or a zoo entry name (``licodec zoo``
    lists them; None: the shipped default), and ``quality`` picks among its
    entries (None: its default). ``weights`` loads a file in licodec's format
    instead (from ``licodec train`` or ``licodec import-checkpoint``); ``name``,
    if given, must then match it. A variable-rate model (``model.num_rates >
    0``) holds every quality: pass ``rate=quality - 1`` to its ``forward``,
    ``compress`` and ``decompress``; ``quality`` here only checks that it exists.
    ``device`` ("cpu", "cuda", "cuda:N", "mps" or "auto", see
    :mod:`licodec.codec.device`) is where the returned model lives; it is
    checked before anything loads, and the weights are loaded (and any coder
    tables built) on the CPU, then moved.
    Raises :class:`~licodec.errors.ModelError` for unknown models, missing
    weights, a quality the model does not have or a device this machine lacks.
    """
    from licodec.codec.device import resolve_device
    from licodec.models import list_models
    from licodec.zoo.weights import load_weights, rates_of, read_config

    target = resolve_device(device)  # before any file is read

    if weights is not None:
        config = read_config(weights)
        if name is not None and config["arch"] != name:
            raise ModelError(f"{weights} holds {config['arch']}, not {name}")
        rates = rates_of(config)
        stored = config.get("quality")
        if quality is not None and rates and quality not in rates:
            raise ModelError(f"{weights} codes at qualities 1..{len(rates)}, not {quality}")
        if quality is not None and not rates and stored not in (None, quality):
            raise ModelError(f"{weights} holds quality {stored}, not {quality}")
        path: str | os.PathLike[str] = weights
    else:
        from licodec.zoo.pretrained import entries, resolve_entry

        shipped = entries()
        if name is not None and name in list_models():
            if shipped and not any(e.arch == name for e in shipped):
                have = ", ".join(sorted({e.arch for e in shipped}))
                raise ModelError(
                    f"no shipped weights for {name!r} (shipped: {have}); convert the authors' "
                    "checkpoint with `licodec import-checkpoint` and pass weights=FILE"
                )
        elif name is not None and not any(name in (e.name, e.tag) for e in shipped):
            known = ", ".join(list_models())
            raise ModelError(f"unknown model {name!r}; known models: {known}")
        path = resolve_entry(name, quality).path
    model, _ = load_weights(path)
    return model.to(target).eval()
