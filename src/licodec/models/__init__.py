"""Model families, one module each; importing this package registers them all."""

from licodec.models.stf import STF
from licodec.models.tcm import TCM
from licodec.models.wacnn import WACNN

__all__ = ["STF", "TCM", "WACNN"]
