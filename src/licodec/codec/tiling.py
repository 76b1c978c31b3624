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
from licodec.errors import EXIT_USAGE, LicodecError

__all__ = [
    "DEFAULT_TILE_SIZE",
    "MIN_TILE_SIZE",
    "TileSizeError",
    "check_tile_size",
    "effective_tile_size",
    "plan_tiles",
    "tile_rects",
]

#: Default tile side in pixels. The decoder's estimate for such a tile
#: (the registry entry's memory_per_pixel, measured with a 1.25 margin) is about 0.3 GB for the lite
#: models and 1.0 (wacnn) to 3.7 GB (tcm-l) for the full-size ones, under the 6 GiB budget.
DEFAULT_TILE_SIZE = 1024
#: Smallest tile side accepted from a user (the smallest pad multiple of any model;
#: ``compress --tile-size`` below it is a usage error).
MIN_TILE_SIZE = 64


class TileSizeError(LicodecError):
    """A requested tile size below the model's pad multiple (a bad command line: exit 2)."""

    exit_code = EXIT_USAGE


def check_tile_size(requested: int, pad_multiple: int, arch: str) -> None:
    """Refuse a tile side below the model's pad multiple.

    Such a tile would be padded to a full block anyway, and the decoder refuses
    tiles narrower than the pad multiple (they multiply its work per pixel).
    """
    p = max(1, int(pad_multiple))
    if requested < p:
        raise TileSizeError(
            f"tile size {requested} is below {arch}'s padding multiple: tiles must be at "
            f"least {p} pixels"
        )


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
