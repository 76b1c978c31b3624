"""Entropy models: the factorized prior, the Gaussian conditional, the channel-wise
autoregressive latent codec, the hyperprior transforms and the model contract.

Attributes are resolved lazily: importing the package (for the torch-free
:mod:`~licodec.entropy.contract`, say) imports no torch.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "ChannelARModel": "licodec.entropy.channel_ar",
    "get_scale_table": "licodec.entropy.channel_ar",
    "slice_transform": "licodec.entropy.channel_ar",
    "hyper_analysis": "licodec.entropy.hyper",
    "hyper_synthesis": "licodec.entropy.hyper",
    "EntropyBottleneck": "licodec.entropy.models",
    "GaussianConditional": "licodec.entropy.models",
    "CodecModel": "licodec.entropy.contract",
    "Coded": "licodec.entropy.contract",
}

__all__ = [
    "ChannelARModel",
    "CodecModel",
    "Coded",
    "EntropyBottleneck",
    "GaussianConditional",
    "get_scale_table",
    "hyper_analysis",
    "hyper_synthesis",
    "slice_transform",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'licodec.entropy' has no attribute {name!r}")
