"""``licodec bd-rate A B``: Bjøntegaard delta rate / quality of curve A against anchor B."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bd-rate",
        help="Bjøntegaard delta rate and delta PSNR between two RD curves",
        description=(
            "BD-rate (average bit-rate difference at equal quality, in %%) and BD-PSNR "
            "(average quality difference at equal rate, in dB) of curve A against the "
            "anchor B, over the range both curves cover. Negative BD-rate: A needs fewer "
            "bits. A and B are CompressAI-format JSON files or names of bundled published "
            "curves (vtm, bpg, jpeg, webp, jpeg2000, stf, wacnn, tcm-s, tcm-m, tcm-l, ...)."
        ),
    )
    parser.add_argument("test", metavar="A", help="curve under test (JSON file or published name)")
    parser.add_argument("anchor", metavar="B", help="anchor curve (JSON file or published name)")
    parser.add_argument(
        "--metric",
        choices=("psnr", "ms-ssim"),
        default="psnr",
        help="quality axis: PSNR-RGB, or MS-SSIM in dB (default: psnr)",
    )
    parser.add_argument(
        "--method",
        choices=("cubic", "pchip"),
        help="interpolation: cubic polynomial fit (VCEG-M33) or PCHIP (default: both)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    import warnings

    from licodec.errors import InputError
    from licodec.eval.bdrate import METHODS, BDOverlapWarning, bjontegaard_curves
    from licodec.eval.results import load_curve

    test = load_curve(args.test)
    anchor = load_curve(args.anchor)
    for label, curve in (("A", test), ("B", anchor)):
        if not curve.has(args.metric):
            raise InputError(f"{label} ({curve.name}) has no {args.metric} values")

    unit = "dB" if args.metric == "psnr" else "dB MS-SSIM"
    qname = "BD-PSNR" if args.metric == "psnr" else "BD-MS-SSIM"
    methods = [args.method] if args.method else list(METHODS)
    lines = []
    reasons: set[str] = set()
    result = None
    for method in methods:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BDOverlapWarning)
            try:
                result = bjontegaard_curves(anchor, test, args.metric, method)
            except ValueError as exc:
                raise InputError(str(exc)) from None
        if result.reason:
            reasons.add(result.reason)
        lines.append(
            f"{method:6s} BD-rate {result.bd_rate:+8.2f} %   {qname} {result.bd_quality:+7.3f} {unit}"
        )
    assert result is not None
    lo, hi = result.quality_interval
    print(f"A: {test.name} ({args.test})")
    print(f"B: {anchor.name} ({args.anchor}), the anchor")
    print(
        f"metric {args.metric}; shared range {lo:.2f}-{hi:.2f} {unit} "
        f"({100 * result.overlap_test:.0f}% of A, {100 * result.overlap_anchor:.0f}% of B), "
        f"{result.rate_interval[0]:.3f}-{result.rate_interval[1]:.3f} bpp"
    )
    for line in lines:
        print(line)
    for reason in sorted(reasons):
        print(f"licodec: warning: BD numbers rest on a small overlap: {reason}", file=sys.stderr)
    return 0
