"""``licodec compress IN... [-o OUT]``: images to ``.lic`` files."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from licodec.cli.support import add_device_option, add_threads_option
from licodec.codec.limits import add_max_input_option
from licodec.codec.quality import (
    EFFORT_MAX,
    EFFORT_STEPS,
    parse_bpp,
    parse_effort,
    parse_quality,
    parse_size,
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "compress",
        help="compress images into .lic files",
        description=(
            "Compress images (anything Pillow reads) into .lic files. IN may be a file, a "
            "directory (its images) or '-' (stdin). With one input, -o names the output file "
            "('-' = stdout; default: the input with .lic); with several, -o is a directory "
            "(default: beside each input). Existing outputs are kept unless -f is given."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="IN", help="image file, directory or '-'")
    parser.add_argument("-o", "--output", metavar="OUT", help="output file, directory or '-'")
    parser.add_argument(
        "--model",
        metavar="NAME",
        help="a model with shipped weights, e.g. wacnn-lite (default: the shipped default; "
        "`licodec zoo` lists them); other models need --weights, e.g. the authors' "
        "checkpoints converted with `licodec import-checkpoint`",
    )
    rate = parser.add_mutually_exclusive_group()
    rate.add_argument(
        "-q",
        "--quality",
        type=parse_quality,
        metavar="Q",
        help="quality from 0 to 100 (decimals allowed) for a variable-rate model such as the "
        "shipped one; its six trained points sit at 0, 20, 40, 60, 80 and 100 (the former "
        "qualities 1-6) and every Q between them interpolates their gains (default: the "
        "zoo's default point: 60 for the shipped model). Fixed-rate weights have no scale: omit it",
    )
    rate.add_argument(
        "--size",
        type=parse_size,
        metavar="BYTES",
        help="target file size (e.g. 20000, 20k, 1.5M; k = 1000, Ki = 1024): the encoder "
        "searches the quality for a file within 2%% of it, or stops with exit 7 naming the "
        "nearest size it can reach",
    )
    rate.add_argument(
        "--bpp", type=parse_bpp, metavar="X", help="target bits per pixel (as --size)"
    )
    parser.add_argument(
        "--effort",
        type=parse_effort,
        default=0,
        metavar="N",
        help=f"0-{EFFORT_MAX}: the encoder refines each tile's latents by gradient descent "
        f"for {', '.join(str(s) for s in EFFORT_STEPS[1:])} steps at levels 1-{EFFORT_MAX}, "
        "for smaller files at the same quality (about 0.3 s per step for a 768x512 image "
        "on 2 CPU cores); 0 (default) is one fast pass. Files decode as any other",
    )
    parser.add_argument(
        "--weights", metavar="FILE", help="weights file in licodec's format (overrides the zoo)"
    )
    parser.add_argument(
        "--tile-size",
        type=_tile_size,
        default=None,
        metavar="N",
        help="tile side in pixels for large images (default: 1024; rounded down to the "
        "model's padding multiple, 64 or 128, which is also the smallest allowed)",
    )
    add_max_input_option(parser)
    parser.add_argument(
        "--drop-alpha", action="store_true", help="discard an alpha channel instead of keeping it"
    )
    meta = parser.add_mutually_exclusive_group()
    meta.add_argument(
        "--keep-metadata",
        choices=("all", "icc", "none"),
        default="all",
        help="metadata to carry into the file and back: all (ICC profile, EXIF, XMP, PNG "
        "text; default), icc (the colour profile only) or none",
    )
    meta.add_argument(
        "--strip",
        dest="keep_metadata",
        action="store_const",
        const="none",
        help="carry no metadata (same as --keep-metadata none)",
    )
    parser.add_argument(
        "--portable",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compute the entropy parameters in float64 so the file decodes on any machine "
        "(default); --no-portable is faster, but its files decode only where "
        "torch's float32 arithmetic is bit-identical (same device, CPU instruction set and "
        "torch build)",
    )
    add_device_option(parser)
    parser.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    add_threads_option(parser)
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar, notices or per-image lines"
    )
    parser.set_defaults(func=run)


def _tile_size(text: str) -> int:
    """argparse type: a tile side of at least the smallest pad multiple (64)."""
    from licodec.codec.tiling import MIN_TILE_SIZE

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < MIN_TILE_SIZE:
        raise argparse.ArgumentTypeError(
            f"tile size must be at least {MIN_TILE_SIZE} (the smallest padding multiple), "
            f"got {value}"
        )
    return value


def _check_lic_name(path: str) -> None:
    """Refuse ``-o photo.webp``: compress writes .lic files, whatever the name says."""
    from pathlib import Path

    from licodec.codec.files import STDIO
    from licodec.errors import OutputError

    ext = "" if path == STDIO else Path(path).suffix.lower()
    if ext not in ("", ".lic"):
        raise OutputError(
            f"{path}: compress writes .lic files, not {ext}; name the output .lic "
            f"(to get a {ext} image, decompress the .lic file with -o NAME{ext})"
        )


def run(args: argparse.Namespace) -> int:
    from licodec.cli.support import (
        LazyBar,
        apply_threads,
        expand_inputs,
        for_each_file,
        human_bytes,
        named,
        note,
        plan_outputs,
    )
    from licodec.codec.api import Codec  # no torch: that comes with the model
    from licodec.codec.files import STDIO, check_output, read_bytes, write_atomic
    from licodec.codec.image_io import image_extensions
    from licodec.codec.tiling import DEFAULT_TILE_SIZE, check_tile_size
    from licodec.errors import LicodecError

    inputs = expand_inputs(args.inputs, image_extensions())
    many = len(inputs) > 1
    outputs = plan_outputs(inputs, args.output, ".lic", many)
    if not many:
        check_output(outputs[0], args.force)  # fail before loading the model
        _check_lic_name(outputs[0])
    # A single input (stdin included) is read, bounded, before the model loads: an
    # unreadable or oversized file or an endless stream fails at once, without torch.
    pre_read: dict[str, bytes] = {}
    if not many:
        pre_read[inputs[0]] = read_bytes(inputs[0], args.max_input)
    apply_threads(args.threads)
    codec = Codec(
        args.model,
        None,
        args.weights,
        tile_size=args.tile_size or DEFAULT_TILE_SIZE,
        portable=args.portable,
        device=args.device,
        q=args.quality,
        size=args.size,
        bpp=args.bpp,
        effort=args.effort,
    )
    lm = codec.load()
    if args.tile_size is not None:
        check_tile_size(args.tile_size, lm.pad_multiple, lm.arch)

    def one(inp: str, out: str, show_tiles: bool) -> None:
        check_output(out, args.force)
        # bounded; FIFOs and devices refused
        source = pre_read.pop(inp) if inp in pre_read else read_bytes(inp, args.max_input)
        name = "<stdin>" if inp == STDIO else inp
        tiles_bar = LazyBar(name, args.quiet or not show_tiles)
        steps_bar = LazyBar(name, args.quiet, unit="step")
        try:
            result = codec.encode(
                source,
                keep_alpha=not args.drop_alpha,
                keep_metadata=args.keep_metadata,
                progress=tiles_bar.update,
                name=name,
                step_progress=steps_bar.update,
            )
        except LicodecError as exc:
            raise named(exc, name) from None
        finally:
            tiles_bar.close()
            steps_bar.close()
        for message in result.notices:
            note(name, message, args.quiet)
        write_atomic(out, result.data, args.force)
        if not args.quiet:
            dest = "<stdout>" if out == STDIO else out
            psnr = f"{result.psnr:.2f} dB" if result.psnr != float("inf") else "inf"
            at = "" if result.quality is None else f"quality {result.quality:g}, "
            if result.effort:
                at += f"effort {result.effort}, "
            print(
                f"{name} -> {dest}: {result.width}x{result.height} {result.colour}, {at}"
                f"{human_bytes(len(result.data))}, {result.bpp:.4f} bpp, PSNR {psnr}, "
                f"{result.tiles} tile{'s' if result.tiles > 1 else ''}, {result.seconds:.2f} s",
                file=sys.stderr,
            )

    return for_each_file(inputs, outputs, one, "compress", args.quiet)
