"""Window multi-head self-attention with relative position bias.

One implementation serves all three papers. Windows are cut and merged with
tensor reshapes (no Python loop over windows), the shifted variant uses a cyclic
roll plus a region mask, and the product itself runs through
``torch.nn.functional.scaled_dot_product_attention`` so that PyTorch picks its
fused kernel.

The authors' modules differ only in parameter names and two numeric details,
which are kept as options so that published checkpoints reproduce:

* WACNN/STF (Swin style): ``qkv``/``proj`` linears, a bias *table* indexed by
  a persistent ``relative_position_index`` buffer, masked logits get ``-100``
  added (so large logits still leak through, as in the authors' code).
* TCM: ``embedding_layer``/``linear``, a bias parameter laid out
  ``[heads, 2w-1, 2w-1]``, masked logits get ``-inf``.

References:
    Liu et al., "Swin Transformer", ICCV 2021 (window attention, shifted windows).
    Zou et al., "The Devil Is in the Details: Window-based Attention for Image
    Compression", CVPR 2022.
    Liu et al., "Learned Image Compression with Mixed Transformer-CNN
    Architectures", CVPR 2023.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "TCMWindowAttention",
    "WindowAttention",
    "relative_position_index",
    "shifted_window_mask",
    "window_merge",
    "window_partition",
    "windowed_attention",
]


def window_partition(x: Tensor, window: int) -> Tensor:
    """(B, H, W, C) -> (B, nWh*nWw, window*window, C); H and W multiples of ``window``."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, -1, window * window, c)


def window_merge(windows: Tensor, window: int, h: int, w: int) -> Tensor:
    """Inverse of :func:`window_partition`: (B, nW, window*window, C) -> (B, H, W, C)."""
    b, _, _, c = windows.shape
    x = windows.view(b, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


def relative_position_index(window: int) -> Tensor:
    """Index into a ``(2w-1)**2`` bias table for every (query, key) pair of a window.

    Tokens are numbered row-major; the index is
    ``(dr + w - 1) * (2w - 1) + (dc + w - 1)`` with ``dr``/``dc`` the row/column
    offsets of query minus key (the Swin layout, which the checkpoints store).
    """
    coords = torch.stack(
        torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    ).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :] + (window - 1)
    return rel[0] * (2 * window - 1) + rel[1]


def shifted_window_mask(h: int, w: int, window: int, shift: int, device: torch.device) -> Tensor:
    """Boolean mask (nW, N, N), True where a query/key pair must not attend.

    After the cyclic roll, windows on the bottom/right border hold pixels from
    up to three image regions that were not neighbours; pairs from different
    regions are masked. ``h``/``w`` are the padded sizes.
    """
    labels = torch.zeros(h, w, dtype=torch.int64, device=device)
    bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    region = 0
    for rows in bounds:
        for cols in bounds:
            labels[rows, cols] = region
            region += 1
    win = window_partition(labels.view(1, h, w, 1), window).view(-1, window * window)
    return win[:, :, None] != win[:, None, :]


class _WindowAttentionBase(nn.Module):
    """Multi-head attention inside windows; subclasses name the parameters."""

    mask_value: float
    relative_position_index: Tensor

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.dim = dim
        self.num_heads = num_heads
        self.window = window
        self.scale = (dim // num_heads) ** -0.5

    def _in_proj(self) -> nn.Linear:
        raise NotImplementedError

    def _out_proj(self) -> nn.Linear:
        raise NotImplementedError

    def position_bias(self) -> Tensor:
        """Relative position bias, (heads, N, N)."""
        raise NotImplementedError

    def forward(self, windows: Tensor, mask: Tensor | None = None) -> Tensor:
        """Attend within windows.

        Args:
            windows: (B, nW, N, C) tokens, N = window**2.
            mask: optional boolean (nW, N, N), True = blocked.
        """
        b, nw, n, c = windows.shape
        heads = self.num_heads
        # Feature f of the 3C projection is s*C + h*d + j (s in q, k, v).
        qkv = self._in_proj()(windows).view(b * nw, n, 3, heads, c // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B*nW, heads, N, d)
        bias = self.position_bias().to(q.dtype)[None]  # (1, heads, N, N)
        if mask is not None:
            # Added to the bias, not in its place, as the authors' code does: with
            # -100 (not -inf) a masked pair still counts where logits are large.
            bias = torch.where(mask[:, None], bias + self.mask_value, bias)  # (nW, heads, N, N)
            if b > 1:
                bias = bias.repeat(b, 1, 1, 1)
        # 4-D inputs and a 4-D mask keep PyTorch on its fused CPU kernel
        # (about 3x faster than the 5-D / 3-D mask fallback).
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        out = out.transpose(1, 2).reshape(b, nw, n, c)  # heads concatenated head-major
        return self._out_proj()(out)


class WindowAttention(_WindowAttentionBase):
    """Swin-style window attention (WACNN, STF): ``qkv``, ``proj``, bias table."""

    mask_value = -100.0

    def __init__(self, dim: int, num_heads: int, window: int, qkv_bias: bool = True) -> None:
        super().__init__(dim, num_heads, window)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) ** 2, num_heads)
        )
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def _in_proj(self) -> nn.Linear:
        return self.qkv

    def _out_proj(self) -> nn.Linear:
        return self.proj

    def position_bias(self) -> Tensor:
        n = self.window * self.window
        idx = self.relative_position_index.reshape(-1)
        return self.relative_position_bias_table[idx].view(n, n, -1).permute(2, 0, 1)


class TCMWindowAttention(_WindowAttentionBase):
    """TCM's ``WMSA``: ``embedding_layer``, ``linear``, bias as ``[heads, 2w-1, 2w-1]``."""

    mask_value = float("-inf")

    def __init__(self, dim: int, head_dim: int, window: int) -> None:
        super().__init__(dim, dim // head_dim, window)
        self.embedding_layer = nn.Linear(dim, 3 * dim)
        self.linear = nn.Linear(dim, dim)
        self.relative_position_params = nn.Parameter(
            torch.zeros(self.num_heads, 2 * window - 1, 2 * window - 1)
        )
        # Not in the authors' state_dict, so not persistent.
        self.register_buffer(
            "relative_position_index", relative_position_index(window), persistent=False
        )
        nn.init.trunc_normal_(self.relative_position_params, std=0.02)

    def _in_proj(self) -> nn.Linear:
        return self.embedding_layer

    def _out_proj(self) -> nn.Linear:
        return self.linear

    def position_bias(self) -> Tensor:
        # params[h, a, b] is the same entry as table[a * (2w-1) + b, h].
        n = self.window * self.window
        flat = self.relative_position_params.reshape(self.num_heads, -1)
        return flat[:, self.relative_position_index.reshape(-1)].view(-1, n, n)


def windowed_attention(attn: _WindowAttentionBase, x: Tensor, shift: int) -> Tensor:
    """Run ``attn`` over (B, H, W, C) features: pad, roll, partition, attend, undo.

    Any H, W work: features are zero-padded on the right/bottom to a multiple
    of the window (after any normalisation, as STF does) and cropped back.
    """
    h, w = x.shape[1:3]
    win = attn.window
    pad_b, pad_r = (-h) % win, (-w) % win
    if pad_b or pad_r:
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    hp, wp = h + pad_b, w + pad_r
    # Shifted even when the map is a single window, as the authors' code does.
    mask = None
    if shift:
        x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
        mask = shifted_window_mask(hp, wp, win, shift, x.device)
    out = window_merge(attn(window_partition(x, win), mask), win, hp, wp)
    if shift:
        out = torch.roll(out, shifts=(shift, shift), dims=(1, 2))
    if pad_b or pad_r:
        out = out[:, :h, :w, :]
    return out
