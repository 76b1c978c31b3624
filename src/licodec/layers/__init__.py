"""Building blocks: window attention, Swin/TCM transformer blocks, WAM, SWAtten, TCM mixture."""

from licodec.layers.attention import (
    TCMWindowAttention,
    WindowAttention,
    relative_position_index,
    shifted_window_mask,
    window_merge,
    window_partition,
    windowed_attention,
)
from licodec.layers.gated import WAM, ResidualUnit, SWAtten, WinBasedAttention
from licodec.layers.tcm import ConvTransBlock
from licodec.layers.transformer import (
    Mlp,
    PatchEmbed,
    PatchMerging,
    PatchSplit,
    SwinBlock,
    SwinStage,
    TCMBlock,
    WindowBlockPair,
)

__all__ = [
    "WindowAttention",
    "TCMWindowAttention",
    "windowed_attention",
    "window_partition",
    "window_merge",
    "relative_position_index",
    "shifted_window_mask",
    "Mlp",
    "SwinBlock",
    "TCMBlock",
    "SwinStage",
    "PatchEmbed",
    "PatchMerging",
    "PatchSplit",
    "WindowBlockPair",
    "ResidualUnit",
    "WinBasedAttention",
    "WAM",
    "SWAtten",
    "ConvTransBlock",
]
