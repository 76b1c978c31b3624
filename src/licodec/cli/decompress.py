"""``licodec decompress IN.lic... [-o OUT.png]``: ``.lic`` files back to images."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from licodec.cli.support import (
    add_device_option,
    add_max_pixels_option,
    add_threads_option,
)
from licodec.codec.limits import add_max_input_option, add_max_memory_option


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "decompress",
        help="decode .lic files into images",
        description=(
            "Decode .lic files. IN may be a file, a directory (its .lic files) or '-' (stdin). "
            "With one input, -o names the output image (its extension picks the format, PNG "
            "by default; '-' = PNG on stdout); with several, -o is a directory. The model and "
            "weights named in the file are used (or --weights FILE, which must match)."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="IN.lic", help=".lic file, directory or '-'")
    parser.add_argument("-o", "--output", metavar="OUT", help="output image, directory or '-'")
    parser.add_argument(
        "--weights",
        metavar="FILE",
        help="weights file (must be the ones the file was encoded with)",
    )
    add_max_pixels_option(parser)
    add_max_memory_option(parser)
    add_max_input_option(parser)
    parser.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    add_device_option(parser)
    add_threads_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-image lines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from licodec.cli.support import (
        LazyBar,
        apply_threads,
        check_device,
        expand_inputs,
        for_each_file,
        named,
        note,
        plan_outputs,
    )
    from licodec.codec.api import Codec  # no torch: that comes with the model
    from licodec.codec.container import MAX_PIXELS
    from licodec.codec.files import STDIO, check_output, read_bytes, write_atomic
    from licodec.codec.image_io import encode_image, output_format
    from licodec.errors import LicodecError

    inputs = expand_inputs(args.inputs, {".lic"})
    many = len(inputs) > 1
    outputs = plan_outputs(inputs, args.output, ".png", many)
    if not many:
        check_output(outputs[0], args.force)
        output_format(outputs[0])  # a bad extension fails before any decoding
    # A single input (stdin included) is read, bounded, before any weights load; its
    # header is checked before the model loads too (Codec.decode).
    pre_read: dict[str, bytes] = {}
    if not many:
        pre_read[inputs[0]] = read_bytes(inputs[0], args.max_input)
    check_device(args.device)  # once, not per file (the model loads with the first file)
    apply_threads(args.threads)
    codec = Codec(
        None, None, args.weights, max_pixels=args.max_pixels or MAX_PIXELS, device=args.device
    )
    codec.max_memory = args.max_memory
    if args.weights is not None:
        codec.load()

    def one(inp: str, out: str, show_tiles: bool) -> None:
        t0 = time.perf_counter()
        check_output(out, args.force)
        data = pre_read.pop(inp) if inp in pre_read else read_bytes(inp, args.max_input)
        name = "<stdin>" if inp == STDIO else inp
        bar = LazyBar(name, args.quiet or not show_tiles)
        try:
            img = codec.decode(data, progress=bar.update)
        except LicodecError as exc:
            raise named(exc, name) from None
        finally:
            bar.close()
        dropped: list[str] = []
        encoded = encode_image(img, out, dropped)
        write_atomic(out, encoded, args.force)
        for message in dropped:
            note(name, message, args.quiet)
        if not args.quiet:
            dest = "<stdout>" if out == STDIO else out
            w, h = img.size
            print(
                f"{name} -> {dest}: {w}x{h} {img.mode}, {len(data)} bytes, "
                f"{len(data) * 8 / (w * h):.4f} bpp, {time.perf_counter() - t0:.2f} s",
                file=sys.stderr,
            )

    return for_each_file(inputs, outputs, one, "decompress", args.quiet)
