"""``licodec baselines DIR --codecs ... -o OUT_DIR``: classical codec RD sweeps."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_CODECS = "jpeg,webp,jpeg2000,avif,jxl,hevc"


def register(subparsers: Any) -> None:
    from licodec.cli.support import positive_int

    parser = subparsers.add_parser(
        "baselines",
        help="rate-distortion sweeps of classical codecs on a folder of images",
        description=(
            "Encode every image with classical codecs at several quality settings, decode "
            "the real files and write one CompressAI-format JSON per codec (mean over "
            "images plus per-image numbers). Rerunning with the same output skips the "
            "images already done."
        ),
    )
    parser.add_argument("directory", metavar="DIR", help="folder of images (PNG, JPEG, ...)")
    parser.add_argument(
        "--codecs",
        default=DEFAULT_CODECS,
        help=f"comma-separated codecs (default: {DEFAULT_CODECS})",
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output folder")
    parser.add_argument(
        "--workers", type=positive_int, default=1, help="worker processes (default: 1)"
    )
    parser.add_argument(
        "--qualities",
        action="append",
        type=_knob_spec,
        default=[],
        metavar="[CODEC:]V1,V2,...",
        help=(
            "knob values instead of the default sweep: quality for jpeg/webp/avif/jxl, "
            "target bpp for jpeg2000, QP for hevc; prefix with CODEC: to set one codec, "
            "repeat for several"
        ),
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="start afresh instead of resuming existing outputs"
    )
    parser.add_argument(
        "--dataset", help="data-set name stored in the outputs (default: DIR's name)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _knob_spec(text: str) -> str:
    """argparse type for ``[CODEC:]V1,V2,...``: the numbers must parse (the codec is
    checked later, with the other codec names)."""
    from licodec.errors import InputError

    _, _, values = text.rpartition(":")
    try:
        _parse_values(values, "")
    except InputError as exc:
        message = str(exc).removeprefix("--qualities ").lstrip(": ")
        raise argparse.ArgumentTypeError(message) from None
    return text


def _parse_values(text: str, what: str) -> list[float]:
    from licodec.errors import InputError

    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(
            f"--qualities {what}: expected comma-separated numbers, got {text!r}"
        ) from None
    if not values:
        raise InputError(f"--qualities {what}: no values given")
    if len(set(values)) != len(values):
        raise InputError(f"--qualities {what}: repeated values")
    return values


def parse_qualities(specs: list[str], codecs: list[str]) -> dict[str, list[float]]:
    """``["jpeg:10,50", "30,40"]`` -> per-codec knob values (bare lists apply to all codecs)."""
    from licodec.eval.baselines import get_codec

    out: dict[str, list[float]] = {}
    for spec in specs:
        if ":" in spec:
            name, _, rest = spec.partition(":")
            codec = get_codec(name).name
            out[codec] = _parse_values(rest, codec)
        else:
            values = _parse_values(spec, "")
            for codec in codecs:
                out[codec] = values
    return out


def run(args: argparse.Namespace) -> int:
    import sys
    import warnings
    from pathlib import Path

    from licodec.errors import InputError
    from licodec.eval.baselines import get_codec, list_images, run_baselines
    from licodec.eval.results import load_results

    codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    if not codecs:
        raise InputError("--codecs: no codec given")
    codecs = [get_codec(c).name for c in codecs]
    if len(set(codecs)) != len(codecs):
        raise InputError("--codecs: a codec is listed twice")
    values = parse_qualities(args.qualities, codecs)
    images = list_images(args.directory)
    dataset = args.dataset or Path(args.directory).resolve().name

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        outputs = run_baselines(
            images,
            codecs,
            args.output,
            workers=args.workers,
            values=values,
            overwrite=args.overwrite,
            progress=False if args.no_progress else None,
            dataset=dataset,
        )
    for w in caught:
        print(f"licodec: warning: {w.message}", file=sys.stderr)

    print(f"{'codec':10s} {'images':>6s} {'points':>6s} {'bpp':>15s} {'PSNR dB':>13s}  file")
    for name, path in outputs.items():
        curve = load_results(path)
        bpp = curve.results["bpp"]
        psnr = curve.results["psnr-rgb"]
        print(
            f"{name:10s} {curve.meta.get('num_images', 0):6d} {len(bpp):6d} "
            f"{min(bpp):6.3f} - {max(bpp):6.3f} {min(psnr):5.2f} - {max(psnr):5.2f}  {path}"
        )
    return 0
