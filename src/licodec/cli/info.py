"""``licodec info IN.lic...``: what a ``.lic`` file holds, without decoding it."""

from __future__ import annotations

import argparse
from typing import Any

from licodec.cli.support import add_max_pixels_option
from licodec.codec.limits import add_max_input_option


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "info",
        help="show what a .lic file holds (validates it, does not decode)",
        description=(
            "Parse and validate .lic files (magic, version, CRC32, every field, the decoder "
            "limits that need no model) and print their header: model, quality, weights "
            "digest, size, colour, tiles, overhead."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="IN.lic", help=".lic file or '-' (stdin)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per file")
    add_max_pixels_option(parser)
    add_max_input_option(parser)
    parser.set_defaults(func=run)


def _text(name: str, d: dict[str, Any]) -> str:
    metric = d["metric"] or "unspecified metric"
    tiles = (
        "1 (untiled)"
        if d["tile_size"] is None
        else f"{d['tiles']} of {d['tile_size'][0]}x{d['tile_size'][1]}"
    )
    extras = []
    if d["alpha"]:
        extras.append(f"alpha {d['alpha']} {d['alpha_bytes']} bytes")
    if d["icc_profile_bytes"]:
        extras.append(f"ICC profile {d['icc_profile_bytes']} bytes")
    if d["srgb"]:
        extras.append("standard sRGB profile (a 4-byte marker chunk)")
    for key, what in (("exif_bytes", "EXIF"), ("xmp_bytes", "XMP")):
        if d[key]:
            extras.append(f"{what} {d[key]} bytes")
    if d["text_chunks"]:
        extras.append(f"{d['text_chunks']} text chunk{'s' if d['text_chunks'] > 1 else ''}")
    lines = [
        f"{name}: licodec format {d['format_version']} ({_CODERS.get(d['coder'], d['coder'])})",
        (
            f"  model    {d['model']} ({_quality(d)}, {metric}), "
            f"weights {d['weights_digest']}"
            + ("" if d["portable"] else ", not portable (float32 entropy parameters)")
        ),
        f"  image    {d['width']}x{d['height']} {d['colour']}"
        + (", " + ", ".join(extras) if extras else ""),
        f"  tiles    {tiles}",
        (
            f"  size     {d['file_bytes']} bytes, {d['bpp']:.4f} bpp "
            f"(streams {d['stream_bytes']}, container {d['overhead_bytes']})"
        ),
    ]
    return "\n".join(lines)


def _quality(d: dict[str, Any]) -> str:
    if d["quality_scale"] is None:
        return f"quality {d['quality']}"
    return f"quality {d['quality_scale']:g} of 100, between trained points, nearest q{d['quality']}"


_CODERS = {"range": "range-coded", "rans": "CompressAI rANS streams"}


def run(args: argparse.Namespace) -> int:
    import json

    from licodec.cli.support import named, report_error
    from licodec.codec.container import MAX_PIXELS
    from licodec.codec.fileinfo import file_info  # no torch, numpy or Pillow
    from licodec.codec.files import STDIO, read_bytes
    from licodec.errors import EXIT_OK, LicodecError

    rc = EXIT_OK
    for inp in args.inputs:
        name = "<stdin>" if inp == STDIO else inp
        try:
            d = file_info(read_bytes(inp, args.max_input), args.max_pixels or MAX_PIXELS)
        except LicodecError as exc:
            err = named(exc, name)
            if len(args.inputs) == 1:
                raise err from None
            report_error(err)
            rc = rc or exc.exit_code
            continue
        print(json.dumps({"file": name, **d}) if args.json else _text(name, d))
    return rc
