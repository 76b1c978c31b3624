"""Entropy models: the factorized prior, the Gaussian conditional, the channel-wise
autoregressive latent codec and the hyperprior transforms."""

from licodec.entropy.channel_ar import ChannelARModel, get_scale_table, slice_transform
from licodec.entropy.hyper import hyper_analysis, hyper_synthesis
from licodec.entropy.models import EntropyBottleneck, GaussianConditional

__all__ = [
    "ChannelARModel",
    "EntropyBottleneck",
    "GaussianConditional",
    "get_scale_table",
    "hyper_analysis",
    "hyper_synthesis",
    "slice_transform",
]
