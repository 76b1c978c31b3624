"""Regenerate src/licodec/eval/reference/kodak_published.json from ../shared/rd_results.

The published Kodak RD points (classical codecs from CompressAI's results,
STF/WACNN from the STF authors, TCM from the TCM authors) are bundled with
licodec as one small JSON file so that users can compare without the shared
folder. Run once from the repository root:

    python tools/make_published_reference.py [--shared ../shared]

Only the numbers are copied (bpp, PSNR, MS-SSIM), each curve with the
source it came from.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

COMPRESSAI = "CompressAI @869a9f5 results/image/kodak/{file} (InterDigital, BSD-3-Clause-Clear)"
STF_REPO = "Googolxx/STF @bbcfe3a results/{} (Apache-2.0)"
TCM_REPO = "jmliu206/LIC_TCM @6c6d7a3 RD_data.md (MIT)"
STF_PAPER = (
    'R. Zou, C. Song, Z. Zhang, "The Devil Is in the Details: Window-based Attention '
    'for Image Compression", CVPR 2022'
)
TCM_PAPER = (
    'J. Liu, H. Sun, J. Katto, "Learned Image Compression with Mixed Transformer-CNN '
    'Architectures", CVPR 2023'
)

# name -> (shared file, display name, citation, paper / tool reference, aliases)
CURVES = {
    "vtm": ("vtm.json", "VTM", COMPRESSAI, "VVC reference software VTM (as run by CompressAI)", []),
    "bpg": (
        "bpg_444_x265_ycbcr.json",
        "BPG 4:4:4 (x265)",
        COMPRESSAI,
        "F. Bellard, BPG 0.9.8, 4:4:4 YCbCr, x265 back end (as run by CompressAI)",
        ["bpg_444_x265_ycbcr"],
    ),
    "hm": ("hm.json", "HM", COMPRESSAI, "HEVC reference software HM (as run by CompressAI)", []),
    "av1": ("av1.json", "AV1", COMPRESSAI, "AV1 (as run by CompressAI)", []),
    "jpeg": ("jpeg.json", "JPEG", COMPRESSAI, "JPEG via Pillow 7.1.2 (as run by CompressAI)", []),
    "webp": ("webp.json", "WebP", COMPRESSAI, "WebP via Pillow 7.1.2 (as run by CompressAI)", []),
    "jpeg2000": (
        "jpeg2000.json",
        "JPEG 2000",
        COMPRESSAI,
        "JPEG 2000 via ffmpeg 3.4.6 (as run by CompressAI)",
        ["j2k"],
    ),
    "stf": (
        "paper-stf2022_mse.json",
        "STF",
        STF_REPO.format("stf_mse_Kodak.json"),
        STF_PAPER,
        ["paper-stf2022_mse"],
    ),
    "stf-ms-ssim": (
        "paper-stf2022_ms-ssim.json",
        "STF (MS-SSIM)",
        STF_REPO.format("stf_ms-ssim_Kodak.json"),
        STF_PAPER,
        ["paper-stf2022_ms-ssim"],
    ),
    "wacnn": (
        "paper-wacnn2022_mse.json",
        "WACNN",
        STF_REPO.format("cnn_mse_Kodak.json"),
        STF_PAPER,
        ["paper-wacnn2022_mse"],
    ),
    "wacnn-ms-ssim": (
        "paper-wacnn2022_ms-ssim.json",
        "WACNN (MS-SSIM)",
        STF_REPO.format("cnn_ms-ssim_Kodak - .json"),
        STF_PAPER,
        ["paper-wacnn2022_ms-ssim"],
    ),
    "tcm-s": (
        "paper-tcm2023-small_mse.json",
        "TCM-S",
        TCM_REPO,
        TCM_PAPER + " (N=64)",
        ["tcm-small", "paper-tcm2023-small_mse"],
    ),
    "tcm-m": (
        "paper-tcm2023-middle_mse.json",
        "TCM-M",
        TCM_REPO,
        TCM_PAPER + " (N=96)",
        ["tcm-middle", "paper-tcm2023-middle_mse"],
    ),
    "tcm-l": (
        "paper-tcm2023-large_mse.json",
        "TCM-L",
        TCM_REPO,
        TCM_PAPER + " (N=128)",
        ["tcm-large", "paper-tcm2023-large_mse"],
    ),
}

KEEP = ("bpp", "psnr-rgb", "ms-ssim-rgb", "ms-ssim-db-rgb")
# The STF/WACNN files call their MS-SSIM dB values "ms-ssim-db".
RENAME = {"ms-ssim-db": "ms-ssim-db-rgb"}


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--shared", default=os.environ.get("LICODEC_SHARED", str(repo.parent / "shared"))
    )
    ap.add_argument(
        "-o", "--output", default=str(repo / "src/licodec/eval/reference/kodak_published.json")
    )
    args = ap.parse_args(argv)
    sys.path.insert(0, str(repo / "src"))
    from licodec.eval.results import load_results, write_json_atomic

    src = Path(args.shared) / "rd_results" / "kodak"
    if not src.is_dir():
        print(f"error: {src} not found (pass --shared)", file=sys.stderr)
        return 1
    curves = {}
    for key, (file, name, source, reference, aliases) in CURVES.items():
        load_results(src / file)  # validates the file (keys, lengths, numbers)
        raw = json.loads((src / file).read_text(encoding="utf-8"))
        results = {}
        for k, v in raw["results"].items():
            k = RENAME.get(k, k)
            if k in KEEP:
                results[k] = v  # verbatim: no rounding, no derived units
        curves[key] = {
            "name": name,
            "description": raw.get("description", ""),
            "source": source.format(file=file),
            "reference": reference,
            "aliases": aliases,
            "results": results,
        }
    data = {
        "dataset": "kodak",
        "note": (
            "Published rate-distortion points on the 24 Kodak images. bpp: bits per pixel; "
            "psnr-rgb: PSNR in dB on 8-bit RGB; ms-ssim-rgb: linear MS-SSIM; ms-ssim-db-rgb: "
            "-10*log10(1 - MS-SSIM). Numbers copied from the sources named per curve; "
            "regenerate with tools/make_published_reference.py."
        ),
        "curves": curves,
    }
    write_json_atomic(data, args.output)
    print(f"wrote {args.output}: {', '.join(curves)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
