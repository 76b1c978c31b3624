"""TCM's parallel Transformer-CNN mixture block.

Reference:
    Liu et al., "Learned Image Compression with Mixed Transformer-CNN
    Architectures", CVPR 2023 (Fig. 3).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from licodec.layers.basic import ResidualBlock, conv1x1
from licodec.layers.transformer import TCMBlock

__all__ = ["ConvTransBlock"]


class ConvTransBlock(nn.Module):
    """1x1 conv, split channels, residual-conv half + window-transformer half, concat, 1x1, add.

    ``dim`` is the width of each half (the block carries ``2 * dim`` channels).
    The conv half is ``ResidualBlock(c) + c``: the input is added twice (once
    inside the residual block), as in the authors' code.
    """

    def __init__(
        self, dim: int, head_dim: int, window: int, kind: str = "W", drop_path: float = 0.0
    ) -> None:
        super().__init__()
        self.dim = dim
        self.trans_block = TCMBlock(dim, head_dim, window, kind, drop_path)
        self.conv1_1 = conv1x1(2 * dim, 2 * dim)
        self.conv1_2 = conv1x1(2 * dim, 2 * dim)
        self.conv_block = ResidualBlock(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        conv_x, trans_x = torch.split(self.conv1_1(x), [self.dim, self.dim], dim=1)
        conv_x = self.conv_block(conv_x) + conv_x
        trans_x = self.trans_block(trans_x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x + self.conv1_2(torch.cat((conv_x, trans_x), dim=1))
