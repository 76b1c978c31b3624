"""``licodec eval DIR [--model NAME | --weights FILE...] -o OUT.json``: RD numbers."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    from licodec.cli.support import add_device_option, positive_int, quality_list

    parser = subparsers.add_parser(
        "eval",
        help="rate-distortion evaluation of a learned model on a folder of images",
        description=(
            "Compress every image to a real .lic file, decode it and measure bpp (from the "
            "file length), PSNR and MS-SSIM on 8-bit RGB and the coding times, at every "
            "weights file (or zoo quality; without --model and --weights: the shipped default "
            "model at every shipped quality). Writes a CompressAI-format JSON (mean over images "
            "plus per-image numbers) that `licodec plot` and `licodec bd-rate` read. "
            "Rerunning with the same output skips the images already done and adds the "
            "operating points the file lacks."
        ),
    )
    parser.add_argument("directory", metavar="DIR", help="folder of images (PNG, JPEG, ...)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.json", help="results file")
    parser.add_argument(
        "--model",
        metavar="NAME",
        help="model id with shipped weights (default: the shipped default)",
    )
    parser.add_argument(
        "--qualities",
        type=quality_list,
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
    add_device_option(parser)
    parser.add_argument("--name", help="curve name in the output (default: 'licodec MODEL')")
    parser.add_argument(
        "--dataset", help="data-set name stored in the output (default: DIR's name)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="start afresh instead of resuming OUT.json"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _fmt(v: Any, spec: str) -> str:
    """``format(v, spec)``, or a dash as wide as the spec asks when ``v`` is missing."""
    if v is None:
        width = spec.split(".")[0].rstrip("df")
        return "-".rjust(int(width) if width.isdigit() else 1)
    return format(v, spec)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from licodec.cli.support import check_device
    from licodec.eval.baselines import list_images
    from licodec.eval.evaluate import OperatingPoint, resolve_points, run_eval

    images = list_images(args.directory)
    points = resolve_points(args.model, args.qualities, args.weights)
    dataset = args.dataset or Path(args.directory).resolve().name
    check_device(args.device)

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
        device=args.device,
    )
    # The file's points: those asked for, and any an earlier run put there.
    in_file = [OperatingPoint.from_meta(d) for d in data["meta"]["points"]]
    labels = [p.label for p in in_file]
    asked = {p.key for p in points}
    kept = [p.label for p in in_file if p.key not in asked]
    if kept:
        print(f"{args.output} also holds {', '.join(kept)} from an earlier run")
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
