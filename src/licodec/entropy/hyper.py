"""Hyperprior transforms of WACNN and STF (GELU conv stacks, two stride-2 steps).

Facts from the authors' code (Googolxx/STF): ``h_a`` is five 3x3 convs with
strides 1, 1, 2, 1, 2; ``h_mean_s``/``h_scale_s`` are conv, sub-pixel x2, conv,
sub-pixel x2, conv. Only the widths differ between the two models.
"""

from __future__ import annotations

from torch import nn

from licodec.layers.basic import conv3x3, subpel_conv3x3

__all__ = ["hyper_analysis", "hyper_synthesis"]


def hyper_analysis(M: int, widths: tuple[int, int, int, int], z_channels: int) -> nn.Sequential:
    """3x3 convs M -> w0 -> w1 -> w2 (stride 2) -> w3 -> z (stride 2), GELU between."""
    w0, w1, w2, w3 = widths
    return nn.Sequential(
        conv3x3(M, w0), nn.GELU(),
        conv3x3(w0, w1), nn.GELU(),
        conv3x3(w1, w2, stride=2), nn.GELU(),
        conv3x3(w2, w3), nn.GELU(),
        conv3x3(w3, z_channels, stride=2),
    )  # fmt: skip


def hyper_synthesis(z_channels: int, widths: tuple[int, int, int, int], M: int) -> nn.Sequential:
    """conv3x3, subpel x2, conv3x3, subpel x2, conv3x3 with GELU between (WACNN, STF)."""
    w0, w1, w2, w3 = widths
    return nn.Sequential(
        conv3x3(z_channels, w0), nn.GELU(),
        subpel_conv3x3(w0, w1, 2), nn.GELU(),
        conv3x3(w1, w2), nn.GELU(),
        subpel_conv3x3(w2, w3, 2), nn.GELU(),
        conv3x3(w3, M),
    )  # fmt: skip
