"""Gated residual attention units: WACNN's WAM and TCM's SWAtten.

Both compute ``u + a(u) * sigmoid(b(v))`` where ``a`` is three residual units
and ``b`` is three residual units plus a 1x1 conv; they differ in what feeds
``b`` (window attention inside ``b`` for WAM, a Swin W/SW pair before ``b`` for
SWAtten) and in the residual units' activation (GELU vs ReLU).

References:
    Zou et al., "The Devil Is in the Details: Window-based Attention for Image
    Compression", CVPR 2022 (WAM, Fig. 3).
    Liu et al., "Learned Image Compression with Mixed Transformer-CNN
    Architectures", CVPR 2023 (SWAtten, Fig. 4).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from licodec.layers.attention import WindowAttention, windowed_attention
from licodec.layers.basic import conv1x1, conv3x3
from licodec.layers.transformer import WindowBlockPair

__all__ = ["WAM", "ResidualUnit", "SWAtten", "WinBasedAttention"]


class ResidualUnit(nn.Module):
    """1x1 (C -> C/2), act, 3x3, act, 1x1 (C/2 -> C), add input, act.

    The final activation is stored as ``relu`` whatever it is, as in the
    authors' code (it has no parameters, so only the behaviour matters).
    """

    def __init__(self, dim: int, act: Callable[[], nn.Module] = nn.GELU) -> None:
        super().__init__()
        half = dim // 2
        self.conv = nn.Sequential(
            conv1x1(dim, half), act(), conv3x3(half, half), act(), conv1x1(half, dim)
        )
        self.relu = act()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.conv(x) + x)


def _gate_branches(
    dim: int, act: Callable[[], nn.Module], head: nn.Module | None = None
) -> tuple[nn.Sequential, nn.Sequential]:
    """The trunk ``a`` and the mask branch ``b`` (optionally led by ``head``)."""
    conv_a = nn.Sequential(*(ResidualUnit(dim, act) for _ in range(3)))
    lead = [head] if head is not None else []
    conv_b = nn.Sequential(*lead, *(ResidualUnit(dim, act) for _ in range(3)), conv1x1(dim, dim))
    return conv_a, conv_b


class WinBasedAttention(nn.Module):
    """``x + proj(W-MSA(x))`` on NCHW maps: window attention without norm or MLP."""

    def __init__(self, dim: int, num_heads: int, window: int, shift: int) -> None:
        super().__init__()
        self.shift = shift
        self.attn = WindowAttention(dim, num_heads, window)

    def forward(self, x: Tensor) -> Tensor:
        t = x.permute(0, 2, 3, 1)
        return (t + windowed_attention(self.attn, t, self.shift)).permute(0, 3, 1, 2)


class WAM(nn.Module):
    """Window attention module (the authors' ``Win_noShift_Attention``).

    ``x + conv_a(x) * sigmoid(conv_b(x))`` with window attention leading
    ``conv_b``. Despite the authors' class name, WACNN always shifts
    (shift = window / 2), which is the default here.
    """

    def __init__(self, dim: int, num_heads: int = 8, window: int = 8, shift: int | None = None):
        super().__init__()
        shift = window // 2 if shift is None else shift
        head = WinBasedAttention(dim, num_heads, window, shift)
        self.conv_a, self.conv_b = _gate_branches(dim, nn.GELU, head)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_a(x) * torch.sigmoid(self.conv_b(x))


class SWAtten(nn.Module):
    """TCM's Swin-transformer attention for the channel entropy model.

    Squeezes ``dim`` channels to ``inner`` (128 in the paper), runs a W/SW
    window block pair, gates with ReLU residual units, and expands back.
    """

    def __init__(self, dim: int, inner: int = 128, head_dim: int = 16, window: int = 8) -> None:
        super().__init__()
        self.in_conv = conv1x1(dim, inner)
        self.non_local_block = WindowBlockPair(inner, head_dim, window)
        self.conv_a, self.conv_b = _gate_branches(inner, nn.ReLU)
        self.out_conv = conv1x1(inner, dim)

    def forward(self, x: Tensor) -> Tensor:
        u = self.in_conv(x)
        z = self.non_local_block(u)
        return self.out_conv(u + self.conv_a(u) * torch.sigmoid(self.conv_b(z)))
