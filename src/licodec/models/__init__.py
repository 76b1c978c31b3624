"""Model families, one module each; importing this package registers them all.

The registry functions are re-exported here because only here is the registry
known to be complete: ``from licodec.models import create_model``.
"""

from licodec.models.elic import ELIC
from licodec.models.stf import STF
from licodec.models.tcm import TCM
from licodec.models.wacnn import WACNN
from licodec.zoo.registry import create_model, get_spec, list_models, register_model

__all__ = [
    "ELIC",
    "STF",
    "TCM",
    "WACNN",
    "create_model",
    "get_spec",
    "list_models",
    "register_model",
]
