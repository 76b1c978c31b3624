"""Splitting large images into independently coded tiles.

Coding a 6000x4000 photo in one piece needs the model's activations for 24
Mpixel at once (many GiB for the transformer models); tiles bound the peak
memory by the tile size instead. Tiles are independent (no context crosses a
tile edge), so each is decoded on its own and written into the output.

The grid is balanced: an image side of ``n`` pixels with requested tile size
``t`` is cut into ``ceil(n / t)`` tiles whose common step is the smallest
multiple of the model's padding multiple that covers ``n`` in that many tiles.
Only the last tile of a row/column may be smaller, which avoids a sliver tile
padded up to a full model block.
"""

from __future__ import annotations

import math

from licodec.codec.container import MAX_TILE_SIDE, tile_rects

__all__ = ["DEFAULT_TILE_SIZE", "MIN_TILE_SIZE", "effective_tile_size", "plan_tiles", "tile_rects"]

#: Default tile side in pixels; a tile of this size decodes in well under 1 GiB
#: with the full models.
DEFAULT_TILE_SIZE = 1024
#: Smallest tile side accepted from a user (before rounding to the model's multiple).
MIN_TILE_SIZE = 64


def effective_tile_size(requested: int, pad_multiple: int) -> int:
    """``requested`` rounded down to a multiple of ``pad_multiple`` within [multiple, 4096]."""
    if requested < 1:
        raise ValueError(f"tile size must be positive, got {requested}")
    p = max(1, int(pad_multiple))
    t = requested // p * p
    t = max(p, min(t, MAX_TILE_SIDE // p * p))
    return t


def _step(n: int, t: int, p: int) -> int:
    k = math.ceil(n / t)
    step = math.ceil(math.ceil(n / k) / p) * p
    return min(step, n)


def plan_tiles(
    width: int, height: int, tile_size: int, pad_multiple: int
) -> tuple[int, int] | None:
    """``(tile_w, tile_h)`` for the container, or ``None`` when one tile covers the image."""
    t = effective_tile_size(tile_size, pad_multiple)
    if width <= t and height <= t:
        return None
    p = max(1, int(pad_multiple))
    return (_step(width, t, p), _step(height, t, p))
