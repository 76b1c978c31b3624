"""Markdown BD-rate table of learned models (licodec eval outputs) against the anchors.

    python tools/zoo_table.py runs/eval/wacnn-lite.json --baselines runs/baselines_kodak

Columns: the curve's range, then its BD-rate (PSNR-RGB, PCHIP; negative = fewer bits)
against our JPEG, WebP, JPEG 2000, AVIF, JPEG XL and HEVC 4:4:4 runs and the bundled
published VTM curve, computed over the PSNR range both curves cover. An asterisk marks a
small overlap (the number then rests on a short stretch of the curves).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

ANCHORS = ("jpeg", "webp", "jpeg2000", "avif", "jxl", "hevc")


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from licodec.eval.bdrate import BDOverlapWarning, bjontegaard_curves
    from licodec.eval.reference import load_published
    from licodec.eval.results import load_results

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("evals", nargs="+", help="licodec eval outputs")
    ap.add_argument("--baselines", required=True, help="folder of licodec baselines outputs")
    ap.add_argument("--method", default="pchip", choices=("pchip", "cubic"))
    ap.add_argument(
        "--points",
        metavar="ANCHOR",
        help="also list each point's PSNR gap to this anchor at the same bpp "
        "(e.g. jpeg; the anchor interpolated linearly in bpp): does a model beat "
        "it at every rate, not just on average",
    )
    args = ap.parse_args(argv)

    base = Path(args.baselines)
    anchors = [
        (n, load_results(base / f"{n}.json")) for n in ANCHORS if (base / f"{n}.json").is_file()
    ]
    anchors.append(("VTM (published)", load_published("vtm")))
    notes = []

    def cell(anchor, test) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BDOverlapWarning)
            try:
                r = bjontegaard_curves(anchor, test, "psnr", args.method)
            except ValueError as exc:  # no overlap at all
                notes.append(f"{test.name} vs {anchor.name}: {exc}")
                return "no overlap"
        if r.low_overlap:
            notes.append(f"{test.name} vs {anchor.name}: {r.reason}")
        return f"{r.bd_rate:+.1f} %" + (" *" if r.low_overlap else "")

    names = [a.name if n.startswith("VTM") else n for n, a in anchors]
    print("| model | bpp | PSNR (dB) | " + " | ".join(f"vs {n}" for n in names) + " |")
    print("|---" * (3 + len(anchors)) + "|")
    curves = [load_results(path) for path in args.evals]
    for c in curves:
        b, q = c.points("psnr")
        cells = " | ".join(cell(a, c) for _, a in anchors)
        print(f"| {c.name} | {b.min():.3f}–{b.max():.3f} | {q.min():.2f}–{q.max():.2f} | {cells} |")
    for note in dict.fromkeys(notes):
        print(f"\n* {note}")
    if args.points:
        import numpy as np

        ref = dict(anchors).get(args.points)
        if ref is None:
            raise SystemExit(f"--points {args.points}: no {args.points}.json in {base}")
        rb, rq = ref.points("psnr")
        lo = int(np.argmin(rb))
        print(f"\n| model | bpp | PSNR (dB) | {args.points} at that bpp | gap (dB) |")
        print("|---|---|---|---|---|")
        for c in curves:
            for bpp, q in zip(*c.points("psnr")):
                if bpp < rb[lo] and q > rq[lo]:  # dominated: more bits and less quality
                    print(
                        f"| {c.name} | {bpp:.3f} | {q:.2f} | below its range; its lowest "
                        f"point is {rb[lo]:.3f} bpp at {rq[lo]:.2f} dB | ahead |"
                    )
                    continue
                if not rb.min() <= bpp <= rb.max():
                    print(f"| {c.name} | {bpp:.3f} | {q:.2f} | outside its range | |")
                    continue
                at = float(np.interp(bpp, rb, rq))
                print(f"| {c.name} | {bpp:.3f} | {q:.2f} | {at:.2f} | {q - at:+.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
