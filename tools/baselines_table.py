"""Markdown table of BD-rates for a folder of `licodec baselines` outputs.

    python tools/baselines_table.py runs/baselines_kodak [--method pchip]

Rows: every <codec>.json in the folder. Columns: range, BD-rate (PSNR) against
our own JPEG and against the bundled published VTM curve, plus sanity checks of
our runs against the matching published curves (JPEG, WebP, JPEG 2000, BPG).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

ORDER = ("jpeg", "webp", "jpeg2000", "avif", "jxl", "hevc")
# our codec -> the published curve it should be compared with
PUBLISHED_TWIN = {"jpeg": "jpeg", "webp": "webp", "jpeg2000": "jpeg2000", "hevc": "bpg"}


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(repo / "src"))
    from licodec.eval.bdrate import BDOverlapWarning, bjontegaard_curves
    from licodec.eval.reference import load_published
    from licodec.eval.results import load_results

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directory")
    args = ap.parse_args(argv)
    d = Path(args.directory)
    ours = {p.stem: load_results(p) for p in sorted(d.glob("*.json"))}
    names = [n for n in ORDER if n in ours] + [n for n in ours if n not in ORDER]
    vtm = load_published("vtm")
    notes: list[str] = []

    def bd(anchor, test, method: str, metric: str = "psnr") -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BDOverlapWarning)
            r = bjontegaard_curves(anchor, test, metric, method)
        if r.low_overlap:
            notes.append(f"{test.name} vs {anchor.name} ({metric}): {r.reason}")
        return f"{r.bd_rate:+.1f} %" + (" *" if r.low_overlap else "")

    def bdq(anchor, test, method: str) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BDOverlapWarning)
            r = bjontegaard_curves(anchor, test, "psnr", method)
        return f"{r.bd_quality:+.2f} dB"

    print(
        "| codec | points | images | bpp range | PSNR range (dB) | BD-rate vs our JPEG (PCHIP) "
        "| BD-rate vs VTM (PCHIP) | BD-rate vs VTM (cubic) | BD-PSNR vs VTM (PCHIP) "
        "| BD-rate MS-SSIM vs VTM (PCHIP) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    jpeg = ours.get("jpeg")
    for n in names:
        c = ours[n]
        b, q = c.points("psnr")
        print(
            f"| {c.name} | {len(b)} | {c.meta.get('num_images', '?')} | {b.min():.3f}-{b.max():.3f} "
            f"| {q.min():.2f}-{q.max():.2f} | {bd(jpeg, c, 'pchip') if jpeg else 'n/a'} "
            f"| {bd(vtm, c, 'pchip')} | {bd(vtm, c, 'cubic')} | {bdq(vtm, c, 'pchip')} "
            f"| {bd(vtm, c, 'pchip', 'ms-ssim') if c.has('ms-ssim') else 'n/a'} |"
        )
    print()
    print("Sanity checks against the published curves (BD-rate of ours vs published, PSNR):")
    print()
    print("| ours | published | PCHIP | cubic | BD-PSNR (PCHIP) |")
    print("|---|---|---|---|---|")
    for n, pub in PUBLISHED_TWIN.items():
        if n in ours:
            p = load_published(pub)
            print(
                f"| {ours[n].name} | {p.name} | {bd(p, ours[n], 'pchip')} | {bd(p, ours[n], 'cubic')} "
                f"| {bdq(p, ours[n], 'pchip')} |"
            )
    if notes:
        print()
        for note in dict.fromkeys(notes):
            print(f"* small overlap: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
