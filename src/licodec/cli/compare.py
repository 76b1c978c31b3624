"""``licodec compare IMAGE --bpp 0.3 -o fig.png``: crops of every codec at one file size."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_CODECS = "jpeg,webp,jpeg2000,avif,jxl,hevc"


def register(subparsers: Any) -> None:
    from licodec.cli.support import (
        add_device_option,
        add_threads_option,
        crop_box,
        positive_float,
        positive_int,
        quality_list,
    )

    parser = subparsers.add_parser(
        "compare",
        help="side-by-side crops of a learned model and classical codecs at equal file size",
        description=(
            "Code IMAGE with a learned model and with classical codecs, each matched to the "
            "same file size (within 5 %), and draw the same crop of every decoded image, "
            "labelled with bpp and PSNR. The learned model is the shipped default unless "
            "--model or --weights names another (--model none: classical codecs only). With "
            "several weights (or --qualities) the one whose file is closest to --bpp is shown; "
            "its real size is the target of the classical codecs. With one weights file, or a "
            "zoo model without --qualities and --bpp (its default quality, as compress uses), "
            "--bpp is not needed; a zoo model with --bpp is tried at every shipped quality; "
            "without a learned model the classical codecs are matched to --bpp."
        ),
    )
    parser.add_argument("image", metavar="IMAGE", help="image file")
    parser.add_argument("-o", "--output", required=True, help="figure to write (.png, .pdf, .svg)")
    parser.add_argument("--bpp", type=positive_float, help="target rate in bits per pixel")
    parser.add_argument(
        "--model",
        metavar="NAME",
        help="learned model id with shipped weights (default: the shipped default; "
        "'none' for classical codecs only)",
    )
    parser.add_argument(
        "--qualities",
        type=quality_list,
        metavar="Q1,Q2,...",
        help="zoo qualities of --model, or rates of a variable-rate --weights file",
    )
    parser.add_argument("--weights", nargs="+", metavar="FILE", help="weights files to choose from")
    parser.add_argument(
        "--codecs",
        default=DEFAULT_CODECS,
        help=f"comma-separated classical codecs (default: {DEFAULT_CODECS}; 'none' for none)",
    )
    parser.add_argument(
        "--crop",
        type=crop_box,
        metavar="X,Y,W,H",
        help="region to show, in pixels (default: a centred 256x256 square)",
    )
    parser.add_argument(
        "--tile-size", type=positive_int, metavar="N", help="tile side for the learned model"
    )
    parser.add_argument("--title", help="figure title (default: the image name)")
    parser.add_argument("--json", metavar="FILE", help="also write the panels' numbers as JSON")
    add_device_option(parser)
    add_threads_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from licodec.cli.support import apply_threads, check_device
    from licodec.codec.image_io import read_rgb
    from licodec.errors import InputError
    from licodec.eval.baselines import get_codec
    from licodec.eval.compare import SIZE_TOLERANCE, render_compare, run_compare
    from licodec.eval.plot import check_figure_path

    check_figure_path(args.output)
    crop = args.crop
    names = [c.strip() for c in args.codecs.split(",") if c.strip()]
    if names == ["none"]:
        names = []
    codecs = [get_codec(c).name for c in names]
    if len(set(codecs)) != len(codecs):
        raise InputError("--codecs: a codec is listed twice")
    points: list[Any] = []
    if args.model == "none":
        if args.weights or args.qualities:
            raise InputError("--model none: no learned model, so no --weights or --qualities")
    else:
        from licodec.eval.evaluate import default_points, resolve_points

        if args.weights or args.qualities or args.bpp is not None:
            points = resolve_points(args.model, args.qualities, args.weights)
        else:  # nothing picks a rate: the one compress would use
            points = default_points(args.model)
    if not points and not codecs:
        raise InputError("nothing to compare: give a learned model and/or --codecs")
    rgb = read_rgb(args.image)
    if points:  # classical codecs alone run no model
        check_device(args.device)
    apply_threads(args.threads)

    panels, crop, target = run_compare(
        rgb,
        bpp=args.bpp,
        points=points,
        codecs=codecs,
        crop=crop,
        tile_size=args.tile_size,
        device=args.device,
        progress=lambda what: print(f"coding with {what} ...", file=sys.stderr),
    )
    if points:
        asked = f", closest to the {args.bpp:g} bpp asked for" if len(points) > 1 else ""
        source = f"matched to the {panels[0].label} file ({target:.3f} bpp{asked})"
    else:
        source = f"matched to {target:.3f} bpp"
    title = args.title or f"{Path(args.image).name}: classical codecs {source}"
    render_compare(rgb, panels, crop, args.output, title=title)

    print(f"{'codec':34s} {'setting':>16s} {'bytes':>8s} {'bpp':>7s} {'size':>7s} {'PSNR':>9s}")
    missed = []
    for p in panels:
        print(
            f"{p.label:34s} {p.setting:>16s} {p.num_bytes:8d} {p.bpp:7.4f} "
            f"{p.size_error:+7.1%} {p.psnr:6.2f} dB"
        )
        if not p.on_target:
            missed.append(p)
    for p in missed:
        print(
            f"licodec: warning: {p.codec} could not get within {SIZE_TOLERANCE:.0%} of the "
            f"target size ({p.size_error:+.1%} at {p.setting})",
            file=sys.stderr,
        )
    if args.json:
        from licodec.eval.results import write_json_atomic

        write_json_atomic(
            {
                "image": str(args.image),
                "crop": list(crop),
                "target_bpp": target,
                "panels": [p.to_dict() for p in panels],
            },
            args.json,
        )
    print(f"wrote {args.output}")
    return 0
