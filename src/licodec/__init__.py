"""licodec: learned image compression with WACNN, STF and TCM.

Attributes are resolved lazily so that ``import licodec`` does no work.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "create_model": "licodec.models",
    "list_models": "licodec.models",
    "register_model": "licodec.zoo.registry",
    "load_model": "licodec.zoo.load",
    "compress": "licodec.codec.api",
    "decompress": "licodec.codec.api",
    "Codec": "licodec.codec.api",
}

__all__ = [
    "Codec",
    "__version__",
    "compress",
    "create_model",
    "decompress",
    "list_models",
    "load_model",
    "register_model",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'licodec' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The public names are lazy (not in globals() until first used): list them anyway.
    return sorted(set(__all__) | {k for k in globals() if k.startswith("__")})
