"""Building blocks on their own, checked against direct (naive) formulations of the papers."""

from __future__ import annotations

import itertools

import pytest
import torch

from licodec.layers import (
    WAM,
    ConvTransBlock,
    PatchMerging,
    PatchSplit,
    SWAtten,
    SwinBlock,
    TCMWindowAttention,
    WindowAttention,
    relative_position_index,
    shifted_window_mask,
    window_merge,
    window_partition,
    windowed_attention,
)


def test_partition_and_merge_are_inverse_and_row_major() -> None:
    x = torch.arange(2 * 8 * 12 * 3, dtype=torch.float32).view(2, 8, 12, 3)
    w = window_partition(x, 4)
    assert w.shape == (2, 6, 16, 3)
    assert torch.equal(w[0, 1, 5], x[0, 1, 5])  # window (0, 1), token (1, 1)
    assert torch.equal(w[1, 4, 0], x[1, 4, 4])  # window (1, 1)
    assert torch.equal(window_merge(w, 4, 8, 12), x)


def test_relative_position_index_formula() -> None:
    w = 3
    idx = relative_position_index(w)
    for p, q in itertools.product(range(w * w), repeat=2):
        (rp, cp), (rq, cq) = divmod(p, w), divmod(q, w)
        assert idx[p, q] == (rp - rq + w - 1) * (2 * w - 1) + (cp - cq + w - 1)


def test_shift_mask_matches_region_labels() -> None:
    h, w, win, s = 8, 12, 4, 2
    labels = torch.zeros(h, w, dtype=torch.long)
    rows = [range(h - win), range(h - win, h - s), range(h - s, h)]
    cols = [range(w - win), range(w - win, w - s), range(w - s, w)]
    for i, rr in enumerate(rows):
        for j, cc in enumerate(cols):
            for r in rr:
                for c in cc:
                    labels[r, c] = 3 * i + j
    mask = shifted_window_mask(h, w, win, s, torch.device("cpu"))
    lw = window_partition(labels.view(1, h, w, 1), win).view(-1, win * win)
    for k in range(mask.shape[0]):
        for p, q in itertools.product(range(win * win), repeat=2):
            assert bool(mask[k, p, q]) == bool(lw[k, p] != lw[k, q])
    assert not mask[0].any() and mask[-1].any()


def _naive_window_attention(attn: WindowAttention, x: torch.Tensor, shift: int) -> torch.Tensor:
    """Swin as the authors write it: roll, partition, q*scale, q@k^T + bias - 100*mask, softmax."""
    b, h, w, c = x.shape
    win, heads = attn.window, attn.num_heads
    xs = torch.roll(x, (-shift, -shift), (1, 2)) if shift else x
    wins = window_partition(xs, win).reshape(-1, win * win, c)
    qkv = (
        attn.qkv(wins)
        .reshape(wins.shape[0], win * win, 3, heads, c // heads)
        .permute(2, 0, 3, 1, 4)
    )
    q, k, v = qkv[0] * attn.scale, qkv[1], qkv[2]
    logits = q @ k.transpose(-2, -1) + attn.position_bias()[None]
    if shift:
        m = shifted_window_mask(h, w, win, shift, x.device).float() * -100.0
        nw = m.shape[0]
        logits = (logits.view(-1, nw, heads, win * win, win * win) + m[None, :, None]).view_as(
            logits
        )
    out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(-1, win * win, c)
    out = window_merge(attn.proj(out).view(b, -1, win * win, c), win, h, w)
    return torch.roll(out, (shift, shift), (1, 2)) if shift else out


@pytest.mark.parametrize("shift", [0, 2])
@pytest.mark.parametrize("magnitude", [1.0, 10.0])
def test_window_attention_equals_the_naive_formula(shift: int, magnitude: float) -> None:
    """Also with logits of order 100, where the -100 mask does not block completely
    and must be added to the position bias, not replace it."""
    attn = WindowAttention(dim=12, num_heads=3, window=4)
    torch.nn.init.normal_(attn.relative_position_bias_table, std=2.0)
    torch.manual_seed(1)
    x = torch.randn(2, 8, 12, 12) * magnitude
    with torch.no_grad():
        ours = windowed_attention(attn, x, shift)
        ref = _naive_window_attention(attn, x, shift)
    torch.testing.assert_close(ours, ref, atol=1e-4 * magnitude, rtol=1e-4)


def test_tcm_bias_layout_equals_the_table_layout() -> None:
    tcm = TCMWindowAttention(dim=16, head_dim=8, window=4)
    swin = WindowAttention(dim=16, num_heads=2, window=4)
    torch.nn.init.normal_(tcm.relative_position_params)
    with torch.no_grad():
        # params[h, a, b] == table[a * (2w - 1) + b, h]
        swin.relative_position_bias_table.copy_(tcm.relative_position_params.flatten(1).t())
    assert torch.equal(tcm.position_bias(), swin.position_bias())
    assert "relative_position_index" not in tcm.state_dict()  # not in the authors' files


def test_attention_pads_any_size_and_keeps_shape() -> None:
    block = SwinBlock(dim=8, num_heads=2, window=4, shift=2)
    x = torch.randn(1, 5, 7, 8)
    assert block(x).shape == x.shape


def test_patch_merging_order_and_split_shapes() -> None:
    merge = PatchMerging(dim=1)
    x = torch.arange(16, dtype=torch.float32).view(1, 4, 4, 1)
    gathered = []
    merge.norm.register_forward_hook(lambda m, i, o: gathered.append(i[0]))
    merge(x)
    # (even row, even col), (odd, even), (even, odd), (odd, odd) of the top-left 2x2
    assert gathered[0][0, 0, 0].tolist() == [0.0, 4.0, 1.0, 5.0]
    assert PatchMerging(6)(torch.randn(2, 5, 7, 6)).shape == (2, 3, 4, 12)
    assert PatchSplit(12)(torch.randn(2, 3, 4, 12)).shape == (2, 6, 8, 6)


def test_gated_and_mixture_blocks_keep_shapes() -> None:
    x = torch.randn(1, 16, 16, 16)
    assert WAM(16, num_heads=2, window=8)(x).shape == x.shape
    assert SWAtten(16, inner=8, head_dim=4, window=4)(x).shape == x.shape
    assert ConvTransBlock(8, head_dim=4, window=8, kind="SW")(x).shape == x.shape
    with pytest.raises(ValueError, match="kind"):
        ConvTransBlock(8, 4, 8, kind="X")
