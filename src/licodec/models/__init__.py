"""Model families, one module each; importing this package registers them all."""

from licodec import _compressai  # noqa: F401  (first: loads CompressAI without its jit warning)
from licodec.models.stf import STF
from licodec.models.tcm import TCM
from licodec.models.wacnn import WACNN

__all__ = ["STF", "TCM", "WACNN"]
