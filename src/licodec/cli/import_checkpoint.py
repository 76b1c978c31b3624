"""``licodec import-checkpoint``: convert an authors' ``.pth.tar`` into our weights format."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from licodec.errors import OutputError


def register(sub: Any) -> None:
    from licodec.cli.support import positive_float, quality

    p = sub.add_parser(
        "import-checkpoint",
        help="convert a published STF/WACNN/TCM checkpoint to licodec weights",
        description=(
            "Load the authors' .pth.tar (read with torch.load(weights_only=True), strict "
            "key/shape checks) and write licodec weights: safetensors + JSON config."
        ),
    )
    p.add_argument("input", help="authors' checkpoint (.pth.tar / .pth)")
    p.add_argument("output", help="output .safetensors file")
    p.add_argument(
        "--arch", required=True, help="registered model id: wacnn, stf, tcm-s, tcm-m, tcm-l"
    )
    p.add_argument(
        "--lambda",
        dest="lmbda",
        type=positive_float,
        default=None,
        help="training lambda, if known",
    )
    p.add_argument("--metric", choices=("mse", "ms-ssim"), default="mse")
    p.add_argument("--quality", type=quality, default=None, help="quality index, if known")
    p.add_argument("-f", "--force", action="store_true", help="overwrite the output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from licodec.zoo.checkpoint import load_authors_checkpoint
    from licodec.zoo.weights import save_weights, weights_digest

    if os.path.exists(args.output) and not args.force:
        raise OutputError(f"{args.output} exists (use -f to overwrite)")
    model = load_authors_checkpoint(args.input, args.arch)
    meta: dict[str, Any] = {
        "metric": args.metric,
        "source": f"imported from {os.path.basename(args.input)}",
    }
    if args.lmbda is not None:
        meta["lambda"] = args.lmbda
    if args.quality is not None:
        meta["quality"] = args.quality
    save_weights(model, args.output, meta)
    n = sum(p.numel() for p in model.parameters())
    print(
        f"{args.output}: {args.arch}, {n / 1e6:.2f} M parameters, digest {weights_digest(model).hex()}",
        file=sys.stdout,
    )
    return 0
