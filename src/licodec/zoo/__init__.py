"""Model zoo: the registry, our weight format, and imports of the authors' checkpoints."""

from licodec.zoo.registry import create_model, get_spec, list_models, register_model

__all__ = ["create_model", "get_spec", "list_models", "register_model"]
