"""Building blocks: window attention, Swin/TCM transformer blocks, WAM, SWAtten, TCM mixture."""

from licodec import _compressai  # noqa: F401  (first: loads CompressAI without its jit warning)
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
    "WAM",
    "ConvTransBlock",
    "Mlp",
    "PatchEmbed",
    "PatchMerging",
    "PatchSplit",
    "ResidualUnit",
    "SWAtten",
    "SwinBlock",
    "SwinStage",
    "TCMBlock",
    "TCMWindowAttention",
    "WinBasedAttention",
    "WindowAttention",
    "WindowBlockPair",
    "relative_position_index",
    "shifted_window_mask",
    "window_merge",
    "window_partition",
    "windowed_attention",
]
