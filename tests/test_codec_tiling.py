"""Tile grids: exact cover, bounded size, multiples of the model's padding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from licodec.codec.container import MAX_TILE_SIDE
from licodec.codec.tiling import effective_tile_size, plan_tiles, tile_rects


@pytest.mark.parametrize(
    "width,height,tile,pad",
    [
        (1, 1, 1024, 64),
        (768, 512, 1024, 64),
        (1025, 700, 1024, 64),
        (6000, 4000, 1024, 64),
        (6000, 4000, 1024, 128),
        (130, 257, 64, 64),
        (130, 257, 100, 128),
        (5000, 3, 512, 64),
        (4097, 4097, 99999, 64),
    ],
)
def test_grid_covers_image_once(width: int, height: int, tile: int, pad: int) -> None:
    grid = plan_tiles(width, height, tile, pad)
    t = effective_tile_size(tile, pad)
    assert t % pad == 0 and pad <= t <= MAX_TILE_SIDE
    rects = tile_rects(width, height, grid)
    cover = np.zeros((height, width), dtype=np.int32)
    for x, y, w, h in rects:
        assert w >= 1 and h >= 1 and w <= t and h <= t
        cover[y : y + h, x : x + w] += 1
    assert (cover == 1).all()
    if grid is None:
        assert width <= t and height <= t and len(rects) == 1
    else:
        tw, th = grid
        # steps are multiples of the padding unless a single tile spans that side
        assert tw % pad == 0 or tw == width
        assert th % pad == 0 or th == height
        # as few tiles as the requested size allows
        assert len(rects) <= math.ceil(width / t) * math.ceil(height / t)


def test_grid_is_balanced() -> None:
    # 1025 px with 1024 tiles: two tiles of 576 + 449, not 1024 + a 1-pixel sliver
    assert plan_tiles(1025, 10, 1024, 64) == (576, 10)
    assert plan_tiles(6000, 4000, 1024, 64) == (1024, 1024)
    rects = tile_rects(6000, 4000, (1024, 1024))
    assert len(rects) == 24 and rects[-1] == (5120, 3072, 880, 928)


def test_effective_tile_size_rounds_to_multiple() -> None:
    assert effective_tile_size(1000, 64) == 960
    assert effective_tile_size(10, 128) == 128
    assert effective_tile_size(10**6, 64) == MAX_TILE_SIDE
    with pytest.raises(ValueError):
        effective_tile_size(0, 64)
