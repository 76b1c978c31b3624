"""Pre-norm window transformer blocks and the patch merge/split layers.

STF's ``SwinTransformerBlock`` and TCM's ``Block`` compute the same function
(``x + attn(LN(x))`` then ``x + MLP(LN(x))``); they differ only in parameter
names and attention numerics, so both subclass one block here. Blocks work
on channels-last maps (B, H, W, C) of any size.

References:
    Liu et al., "Swin Transformer", ICCV 2021.
    Zou et al., CVPR 2022 (STF); Liu et al., CVPR 2023 (TCM).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from licodec.layers.attention import (
    TCMWindowAttention,
    WindowAttention,
    _WindowAttentionBase,
    windowed_attention,
)
from licodec.layers.basic import DropPath

__all__ = [
    "Mlp",
    "PatchEmbed",
    "PatchMerging",
    "PatchSplit",
    "SwinBlock",
    "SwinStage",
    "TCMBlock",
    "WindowBlockPair",
]


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2 (STF's names)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _PreNormWindowBlock(nn.Module):
    """x + attn(norm_a(x)), then x + ffn(norm_b(x)), on (B, H, W, C)."""

    def __init__(self, shift: int, drop_path: float) -> None:
        super().__init__()
        self.shift = shift
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def parts(self) -> tuple[nn.Module, _WindowAttentionBase, nn.Module, nn.Module]:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        norm_a, attn, norm_b, ffn = self.parts()
        x = x + self.drop_path(windowed_attention(attn, norm_a(x), self.shift))
        return x + self.drop_path(ffn(norm_b(x)))


class SwinBlock(_PreNormWindowBlock):
    """STF's Swin block: ``norm1``, ``attn`` (qkv/proj/bias table), ``norm2``, ``mlp``."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: int,
        shift: int = 0,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__(shift, drop_path)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def parts(self) -> tuple[nn.Module, _WindowAttentionBase, nn.Module, nn.Module]:
        return self.norm1, self.attn, self.norm2, self.mlp


class TCMBlock(_PreNormWindowBlock):
    """TCM's ``Block``: ``ln1``, ``msa`` (WMSA), ``ln2``, ``mlp`` = Linear-GELU-Linear.

    ``kind`` is ``"W"`` (regular windows) or ``"SW"`` (shifted by window/2).
    """

    def __init__(
        self, dim: int, head_dim: int, window: int, kind: str = "W", drop_path: float = 0.0
    ) -> None:
        if kind not in ("W", "SW"):
            raise ValueError(f"kind must be 'W' or 'SW', got {kind!r}")
        super().__init__(window // 2 if kind == "SW" else 0, drop_path)
        self.ln1 = nn.LayerNorm(dim)
        self.msa = TCMWindowAttention(dim, head_dim, window)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def parts(self) -> tuple[nn.Module, _WindowAttentionBase, nn.Module, nn.Module]:
        return self.ln1, self.msa, self.ln2, self.mlp


class WindowBlockPair(nn.Module):
    """A W block then an SW block, on (B, C, H, W) maps (TCM's ``SwinBlock``)."""

    def __init__(self, dim: int, head_dim: int, window: int) -> None:
        super().__init__()
        self.block_1 = TCMBlock(dim, head_dim, window, "W")
        self.block_2 = TCMBlock(dim, head_dim, window, "SW")

    def forward(self, x: Tensor) -> Tensor:
        x = self.block_2(self.block_1(x.permute(0, 2, 3, 1)))
        return x.permute(0, 3, 1, 2)


class PatchEmbed(nn.Module):
    """Conv patchify (k = s = patch) and LayerNorm; NCHW in, (B, H/p, W/p, C) out."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        p = self.patch_size
        h, w = x.shape[-2:]
        if h % p or w % p:
            x = F.pad(x, (0, (-w) % p, 0, (-h) % p))
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class PatchMerging(nn.Module):
    """2x2 neighbours concatenated (4C), LayerNorm, Linear 4C -> 2C without bias."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[1:3]
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        # Order (even row, even col), (odd, even), (even, odd), (odd, odd).
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


class PatchSplit(nn.Module):
    """The inverse step: LayerNorm, Linear C -> 2C (no bias), PixelShuffle(2) -> C/2."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = self.reduction(self.norm(x)).permute(0, 3, 1, 2)
        return F.pixel_shuffle(x, 2).permute(0, 2, 3, 1)


class SwinStage(nn.Module):
    """``depth`` Swin blocks alternating W/SW, then an optional resampling layer.

    Keys follow STF: ``blocks.{i}`` and ``downsample`` (a PatchMerging on the
    analysis side, a PatchSplit on the synthesis side, despite the name).
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window: int,
        resample: str | None = None,
        mlp_ratio: float = 4.0,
        drop_path: Sequence[float] = (),
    ) -> None:
        super().__init__()
        rates = list(drop_path) or [0.0] * depth
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio, rates[i])
            for i in range(depth)
        )
        self.downsample: nn.Module | None
        if resample == "merge":
            self.downsample = PatchMerging(dim)
        elif resample == "split":
            self.downsample = PatchSplit(dim)
        elif resample is None:
            self.downsample = None
        else:
            raise ValueError(f"resample must be 'merge', 'split' or None, got {resample!r}")

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return x if self.downsample is None else self.downsample(x)
