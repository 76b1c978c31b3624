"""``file_info``: what a ``.lic`` file declares, without a model (``licodec info``).

Kept apart from :mod:`licodec.codec.api` so that reading a header imports
neither torch nor numpy nor Pillow; the API re-exports it.
"""

from __future__ import annotations

from typing import Any

from licodec.codec.container import MAX_PIXELS, parse
from licodec.codec.limits import check_header

__all__ = ["file_info"]


def file_info(data: bytes | bytearray | memoryview, max_pixels: int = MAX_PIXELS) -> dict[str, Any]:
    """What a ``.lic`` file declares, after full validation (no model is loaded).

    Besides the format, the decoder limits that need no model are checked
    (:func:`licodec.codec.limits.check_header`).
    """
    c = parse(data, max_pixels)
    check_header(c)
    n_px = c.width * c.height
    return {
        "format_version": c.version,
        "coder": c.coder,
        "model": c.model_id,
        "quality": c.quality,
        # the 0-100 quality of a file coded between trained points (format 5), else None
        "quality_scale": None if c.rate_code is None else c.rate_code / 100,
        "metric": c.metric,
        "weights_digest": c.weights_digest.hex(),
        "width": c.width,
        "height": c.height,
        "colour": c.colour.name,
        "tiles": len(c.tiles),
        "tile_size": list(c.tile_size) if c.tile_size else None,
        "icc_profile_bytes": len(c.icc_profile) if c.icc_profile else 0,
        "srgb": c.srgb,
        "exif_bytes": len(c.exif) if c.exif else 0,
        "xmp_bytes": len(c.xmp) if c.xmp else 0,
        "text_chunks": len(c.text),
        "alpha": c.alpha_method.name.lower() if c.alpha_method is not None else None,
        "alpha_bytes": len(c.alpha_data) if c.alpha_data else 0,
        "file_bytes": c.stats["file_bytes"],
        "stream_bytes": c.stats["payload_bytes"],
        "overhead_bytes": c.stats["overhead_bytes"],
        "bpp": c.stats["file_bytes"] * 8 / n_px,
        "portable": c.portable,
        "decode_crc32": f"{c.check_crc:08x}",
    }
