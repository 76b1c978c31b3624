"""Entropy models: the channel-wise autoregressive latent codec and hyperprior transforms."""

from licodec import _compressai  # noqa: F401  (first: loads CompressAI without its jit warning)
from licodec.entropy.channel_ar import ChannelARModel, get_scale_table, slice_transform
from licodec.entropy.hyper import hyper_analysis, hyper_synthesis

__all__ = [
    "ChannelARModel",
    "get_scale_table",
    "hyper_analysis",
    "hyper_synthesis",
    "slice_transform",
]
