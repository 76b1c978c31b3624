"""``licodec bitmap IMAGE [--model NAME] -o map.png``: where a learned model spends its bits."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    from licodec.cli.support import (
        add_device_option,
        add_threads_option,
        positive_float,
        positive_int,
        quality,
    )

    parser = subparsers.add_parser(
        "bitmap",
        help="heat map of the bits a learned model spends per image region",
        description=(
            "Run the model forward on IMAGE and draw -log2 of the likelihoods of its latent y, "
            "summed over channels and spread over the pixels each latent covers, as bits per "
            "pixel beside (or over) the image. The hyperprior z's bits are spread evenly "
            "(default) or left out of the map and reported separately. The map sums to the "
            "model's estimated rate; the real file adds the container and coder overhead."
        ),
    )
    parser.add_argument("image", metavar="IMAGE", help="image file")
    parser.add_argument("-o", "--output", required=True, help="figure to write (.png, .pdf, .svg)")
    parser.add_argument(
        "--model",
        metavar="NAME",
        help="model id with shipped weights (default: the shipped default)",
    )
    parser.add_argument(
        "--quality",
        type=quality,
        metavar="Q",
        help="zoo quality of --model (default: its default, as compress uses), or the rate of "
        "a variable-rate --weights file",
    )
    parser.add_argument("--weights", metavar="FILE", help="weights file in licodec's format")
    parser.add_argument(
        "--layout",
        choices=("beside", "overlay"),
        default="beside",
        help="map beside the image, or over a grey copy of it (default: beside)",
    )
    parser.add_argument(
        "--z",
        choices=("spread", "separate"),
        default="spread",
        help="z's bits spread evenly into the map, or only reported (default: spread)",
    )
    parser.add_argument(
        "--vmax",
        type=positive_float,
        metavar="BPP",
        help="top of the colour scale (default: 99.5th pct)",
    )
    parser.add_argument(
        "--save-map", metavar="FILE.npy", help="also save the map (H x W bits per pixel) as .npy"
    )
    parser.add_argument(
        "--tile-size", type=positive_int, metavar="N", help="tile side, as for compress"
    )
    parser.add_argument("--title", help="figure title (default: image and model)")
    add_device_option(parser)
    add_threads_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from licodec.cli.support import apply_threads
    from licodec.codec.device import resolve_device
    from licodec.codec.image_io import read_rgb
    from licodec.errors import InputError
    from licodec.eval.bitmap import likelihood_map, render_bitmap
    from licodec.eval.evaluate import resolve_points
    from licodec.eval.plot import check_figure_path

    check_figure_path(args.output)
    if args.save_map and not args.save_map.endswith(".npy"):
        raise InputError(f"--save-map {args.save_map}: must end in .npy")
    rgb = read_rgb(args.image)
    from licodec.eval.evaluate import default_points, is_variable_rate

    vr_file = bool(args.weights) and is_variable_rate(args.weights)
    if args.weights is None and args.quality is None:
        points = default_points(args.model)  # the model and quality compress would use
    else:
        points = resolve_points(
            args.model,
            [args.quality] if args.quality is not None and (vr_file or not args.weights) else None,
            [args.weights] if args.weights else None,
        )
    point = points[0]
    if vr_file and args.quality is None:
        raise InputError(f"{args.weights} is variable-rate: give --quality")
    if args.weights and args.quality is not None and point.quality not in (None, args.quality):
        raise InputError(
            f"--quality {args.quality} does not match {args.weights} (q{point.quality})"
        )
    device = resolve_device(args.device)
    apply_threads(args.threads)

    from licodec.entropy.contract import codec_model
    from licodec.zoo.weights import load_weights

    module, _ = load_weights(point.weights)  # on the CPU, as the codec loads it, then moved
    module.to(device)
    model = codec_model(module)
    rate = point.quality - 1 if point.variable_rate and point.quality else None
    bm = likelihood_map(model, rgb, args.tile_size, rate)
    include_z = args.z == "spread"
    title = args.title or f"{Path(args.image).name}: {point.label}"
    render_bitmap(
        rgb, bm, args.output, layout=args.layout, include_z=include_z, title=title, vmax=args.vmax
    )
    if args.save_map:
        import numpy as np

        from licodec.codec.files import atomic_output

        with atomic_output(args.save_map) as tmp, open(tmp, "wb") as fh:
            np.save(fh, bm.map(include_z))  # a file object: np.save would append .npy to a name
    print(
        f"{Path(args.image).name}: estimated {bm.bpp:.4f} bpp "
        f"(y {bm.y_bpp:.4f}, z {bm.z_bpp:.4f}; {bm.total_bits:.0f} bits), "
        f"map max {bm.map(include_z).max():.3f} bpp"
    )
    print(f"wrote {args.output}")
    return 0
