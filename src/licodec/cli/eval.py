"""``licodec eval DIR --model NAME ... -o OUT.json``: RD numbers of a learned model."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    from licodec.codec.cli_support import positive_int

    parser = subparsers.add_parser(
        "eval",
        help="rate-distortion evaluation of a learned model on a folder of images",
        description=(
            "Compress every image to a real .lic file, decode it and measure bpp (from the "
            "file length), PSNR and MS-SSIM on 8-bit RGB and the coding times, at every "
            "weights file (or zoo quality). Writes a CompressAI-format JSON (mean over images "
            "plus per-image numbers) that `licodec plot` and `licodec bd-rate` read. "
            "Rerunning with the same output skips the images already done."
        ),
    )
    parser.add_argument("directory", metavar="DIR", help="folder of images (PNG, JPEG, ...)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.json", help="results file")
    parser.add_argument("--model", metavar="NAME", help="model id, e.g. tcm-s")
    parser.add_argument(
        "--qualities",
        metavar="Q1,Q2,...",
        help="zoo qualities of --model, or rates of a variable-rate --weights file "
        "(default: all of them), to evaluate (one operating point each)",
    )
    parser.add_argument(
        "--weights",
        nargs="+",
        metavar="FILE",
        help="weights files in licodec's format, one operating point each",
    )
    parser.add_argument(
        "--estimate",
        action="store_true",
        help="rate from the model's likelihoods (forward pass) instead of real files",
    )
    parser.add_argument(
        "--per-image",
        action="store_true",
        help="also print every image's numbers (the JSON always has them)",
    )
    parser.add_argument(
        "--workers", type=positive_int, default=1, help="worker processes (default: 1)"
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="torch threads per process (default: torch's with 1 worker, 1 with several)",
    )
    parser.add_argument(
        "--tile-size",
        type=positive_int,
        metavar="N",
        help="tile side in pixels, as for compress (default: 1024)",
    )
    parser.add_argument("--name", help="curve name in the output (default: 'licodec MODEL')")
    parser.add_argument(
        "--dataset", help="data-set name stored in the output (default: DIR's name)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="start afresh instead of resuming OUT.json"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _parse_qualities(text: str) -> list[int]:
    from licodec.errors import InputError

    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--qualities: expected comma-separated integers, got {text!r}") from None
    if not values:
        raise InputError("--qualities: no value given")
    if len(set(values)) != len(values):
        raise InputError("--qualities: a quality is listed twice")
    return values


def _fmt(v: Any, spec: str) -> str:
    """``format(v, spec)``, or a dash as wide as the spec asks when ``v`` is missing."""
    if v is None:
        width = spec.split(".")[0].rstrip("df")
        return "-".rjust(int(width) if width.isdigit() else 1)
    return format(v, spec)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from licodec.eval.baselines import list_images
    from licodec.eval.evaluate import resolve_points, run_eval

    qualities = _parse_qualities(args.qualities) if args.qualities else None
    images = list_images(args.directory)
    points = resolve_points(args.model, qualities, args.weights)
    dataset = args.dataset or Path(args.directory).resolve().name
    labels = [p.label for p in points]

    data = run_eval(
        images,
        points,
        args.output,
        estimate=args.estimate,
        workers=args.workers,
        threads=args.threads,
        tile_size=args.tile_size,
        overwrite=args.overwrite,
        progress=False if args.no_progress else None,
        name=args.name,
        dataset=dataset,
    )
    if args.per_image:
        print(
            f"{'image':24s} {'weights':24s} {'bytes':>8s} {'bpp':>8s} {'PSNR dB':>8s} {'MS-SSIM':>8s}"
        )
        for name, rec in data["per_image"].items():
            for i, label in enumerate(labels):
                n_bytes = rec["bytes"][i] if "bytes" in rec else None
                print(
                    f"{name:24s} {label:24s} {_fmt(n_bytes, '8d')} {rec['bpp'][i]:8.4f} "
                    f"{_fmt(rec['psnr-rgb'][i], '8.2f')} {_fmt(rec['ms-ssim-rgb'][i], '8.4f')}"
                )
    res = data["results"]
    mode = "estimated from likelihoods" if args.estimate else "real files"
    print(f"{data['name']}: {data['meta']['num_images']} images, {mode}")
    print(f"{'weights':24s} {'bpp':>8s} {'PSNR dB':>8s} {'MS-SSIM':>8s} {'MS-SSIM dB':>10s}")
    ms = res.get("ms-ssim-rgb")
    msdb = res.get("ms-ssim-db-rgb")
    for i, label in enumerate(labels):
        print(
            f"{label:24s} {res['bpp'][i]:8.4f} {res['psnr-rgb'][i]:8.2f} "
            f"{_fmt(ms[i] if ms else None, '8.4f')} {_fmt(msdb[i] if msdb else None, '10.2f')}"
        )
    print(f"wrote {args.output}")
    return 0
