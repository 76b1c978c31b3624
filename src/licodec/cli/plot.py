"""``licodec plot *.json -o rd.png``: rate-distortion curves in one figure."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    from licodec.cli.support import number_pair

    parser = subparsers.add_parser(
        "plot",
        help="plot rate-distortion curves from results JSON files",
        description=(
            "Plot CompressAI-format results files (from licodec eval / baselines or "
            "CompressAI) as RD curves, optionally beside bundled published curves."
        ),
    )
    parser.add_argument("results", nargs="*", metavar="JSON", help="results files")
    parser.add_argument("-o", "--output", required=True, help="image to write (.png, .pdf, .svg)")
    parser.add_argument(
        "--metric",
        choices=("psnr", "ms-ssim"),
        default="psnr",
        help="quality axis: PSNR-RGB or MS-SSIM in dB (default: psnr)",
    )
    parser.add_argument(
        "--published",
        default="",
        metavar="NAMES",
        help="comma-separated published Kodak curves to add, e.g. vtm,bpg,stf,tcm-l "
        "('all' for every one)",
    )
    parser.add_argument("--title", help="figure title")
    parser.add_argument(
        "--xlim",
        type=number_pair,
        metavar="MIN,MAX",
        help="bpp range to show, e.g. 0,1.2 (default: all points)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from licodec.errors import InputError
    from licodec.eval.plot import plot_rd
    from licodec.eval.reference import list_published, load_published
    from licodec.eval.results import load_results

    curves = [load_results(p) for p in args.results]
    names = [n.strip() for n in args.published.split(",") if n.strip()]
    if names == ["all"]:
        names = list(list_published())
    published = [load_published(n) for n in names]
    if not curves and not published:
        raise InputError("nothing to plot: give results files and/or --published names")
    skipped = plot_rd(
        curves,
        args.output,
        metric=args.metric,
        published=published,
        title=args.title,
        xlim=args.xlim,
    )
    for name in skipped:
        print(f"licodec: warning: {name} has no {args.metric} values; not plotted", file=sys.stderr)
    print(f"wrote {args.output}")
    return 0
