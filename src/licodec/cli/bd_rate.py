"""``licodec bd-rate A B``: Bjøntegaard delta rate / quality of curve A against anchor B."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bd-rate",
        help="Bjøntegaard delta rate and delta PSNR between two RD curves",
        description=(
            "BD-rate (average bit-rate difference at equal quality, in %) and BD-PSNR "
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
    r_lo, r_hi = result.rate_interval
    qaxis = "PSNR" if args.metric == "psnr" else "MS-SSIM"
    print(f"A: {test.name} ({args.test})")
    print(f"B: {anchor.name} ({args.anchor}), the anchor")
    # Each BD number integrates over the intersection of the two curves' ranges in its
    # own variable: quality for BD-rate, log-rate for BD-quality.
    print(
        f"{'BD-rate':10s} over the {qaxis} range both curves cover: {lo:.2f}-{hi:.2f} {unit} "
        f"({100 * result.overlap_test:.0f}% of A's range, "
        f"{100 * result.overlap_anchor:.0f}% of B's)"
    )
    print(
        f"{qname:10s} over the rate range both curves cover: {r_lo:.3f}-{r_hi:.3f} bpp "
        f"({100 * result.rate_overlap_test:.0f}% of A's range, "
        f"{100 * result.rate_overlap_anchor:.0f}% of B's, in log-rate)"
    )
    for line in lines:
        print(line)
    for reason in sorted(reasons):
        print(f"licodec: warning: BD numbers rest on a small overlap: {reason}", file=sys.stderr)
    mismatch = image_set_mismatch(test, anchor)
    if mismatch:
        print(
            f"licodec: warning: the curves were measured on different image sets ({mismatch}); "
            "their BD numbers mix a codec difference with a content difference",
            file=sys.stderr,
        )
    return 0


def _image_set(curve: Any) -> tuple[str | None, int | None, list[str] | None]:
    """(data-set name, image count, image names) as far as the curve's meta records them."""
    meta = curve.meta or {}
    name = meta.get("dataset")
    images = meta.get("images")
    images = [str(n) for n in images] if isinstance(images, list) else None
    count = meta.get("num_images")
    if not isinstance(count, int) or isinstance(count, bool):
        count = len(images) if images is not None else None
    return (str(name) if name else None), count, images


def image_set_mismatch(a: Any, b: Any) -> str | None:
    """Why curves ``a`` and ``b`` were not measured on the same images (None: same, or
    not recorded). licodec's results record the images; published curves their data set."""

    def describe(label: str, name: str | None, count: int | None) -> str:
        what = f"{count} images" if count is not None else "images"
        return f"{label}: {what}" + (f" of {name}" if name else "")

    (na, ca, ia), (nb, cb, ib) = _image_set(a), _image_set(b)
    if ia is not None and ib is not None:  # both name their images
        if set(ia) == set(ib):
            return None
        if len(ia) == len(ib):
            return f"A and B: {len(ia)} images each, but not the same ones"
    else:
        counts_differ = ca is not None and cb is not None and ca != cb
        names_differ = na is not None and nb is not None and na.lower() != nb.lower()
        if not (counts_differ or names_differ):
            return None
    return f"{describe('A', na, ca)}; {describe('B', nb, cb)}"
