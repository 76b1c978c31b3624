"""``licodec demo``: the main job in one command.

Compresses and decompresses an image with the shipped default model (or
``--weights``) and prints size, bpp, PSNR and timings, so a fresh install
shows at once that the whole path works. Without an image it codes a
generated test picture.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def register(sub: Any) -> None:
    from licodec.codec.quality import parse_quality

    p = sub.add_parser(
        "demo",
        help="compress and decompress an image with the default model, print bpp and PSNR",
    )
    p.add_argument("image", nargs="?", help="image to code (default: a generated 768x512 picture)")
    p.add_argument("--model", help="model id of the shipped weights")
    p.add_argument(
        "-q",
        "--quality",
        type=parse_quality,
        metavar="Q",
        help="quality 0-100 of a variable-rate model, as for compress (default: the zoo's)",
    )
    p.add_argument("--weights", help="weights file instead of the shipped ones")
    p.add_argument("-o", "--output", help="also write the decoded image here")
    p.set_defaults(func=run)


def test_picture(width: int = 768, height: int = 512) -> Any:
    """A deterministic picture with smooth gradients, edges and texture (no file needed)."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(2026)
    yy = np.mgrid[0:height, 0:width][0].astype(np.float32)
    sky = np.stack([90 + 80 * yy / height, 140 + 60 * yy / height, 230 - 40 * yy / height], axis=-1)
    img = Image.fromarray(sky.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    draw.polygon(
        [(0, height), (width * 0.35, height * 0.45), (width * 0.7, height)], fill=(70, 95, 60)
    )
    draw.polygon(
        [
            (width * 0.4, height),
            (width * 0.75, height * 0.35),
            (width, height * 0.8),
            (width, height),
        ],
        fill=(95, 105, 80),
    )
    draw.ellipse([width * 0.78, height * 0.08, width * 0.9, height * 0.26], fill=(250, 235, 170))
    for _i in range(12):
        x0 = int(rng.integers(0, width - 60))
        draw.rectangle(
            [x0, int(height * 0.82), x0 + 40, height],
            fill=tuple(int(v) for v in rng.integers(40, 220, 3)),
        )
    arr = np.asarray(img.filter(ImageFilter.GaussianBlur(1.2))).astype(np.float32)
    grass = rng.normal(0, 9, (height, width, 1)) * (yy[..., None] > height * 0.6)
    return Image.fromarray((arr + grass).clip(0, 255).astype(np.uint8))


def run(args: argparse.Namespace) -> int:
    from licodec.codec.api import Codec
    from licodec.codec.files import check_output, write_atomic
    from licodec.codec.image_io import encode_image
    from licodec.eval.metrics import psnr

    if args.output:
        check_output(args.output, overwrite=True)
    codec = Codec(args.model, None, args.weights, q=args.quality)
    lm = codec.load()
    source = args.image if args.image else test_picture()
    name = str(args.image or "generated 768x512 test picture")
    res = codec.encode(source, keep_reconstruction=True, name=name)
    t0 = time.perf_counter()
    decoded = codec.decompress(res.data)
    t_dec = time.perf_counter() - t0
    import numpy as np

    if res.reconstruction is not None and not np.array_equal(
        np.asarray(res.reconstruction), np.asarray(decoded)
    ):
        raise RuntimeError("decoded image differs from the encoder's reconstruction")
    quality = psnr(source, decoded.convert("RGB")) if not args.image else res.psnr
    print(
        f"{name}: {res.width}x{res.height} with {lm.arch}, {len(res.data)} bytes, "
        f"{res.bpp:.4f} bpp, PSNR {quality:.2f} dB, encode {res.seconds:.2f} s, "
        f"decode {t_dec:.2f} s (decoded = encoder's reconstruction, bit for bit)",
        file=sys.stdout,
    )
    if args.output:
        write_atomic(args.output, encode_image(decoded, args.output), overwrite=True)
    return 0
