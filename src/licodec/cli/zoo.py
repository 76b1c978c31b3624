"""``licodec zoo``: registered architectures and shipped pretrained weights."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("zoo", help="list model architectures and shipped weights")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from licodec.zoo.pretrained import entries
    from licodec.zoo.registry import get_spec, list_models

    archs = [get_spec(n) for n in list_models()]
    shipped = entries()
    if args.json:
        print(
            json.dumps(
                {
                    "architectures": [
                        {"name": s.name, "description": s.description, "paper": s.paper} for s in archs
                    ],
                    "weights": [
                        {"name": e.name, "arch": e.arch, "quality": e.quality, "metric": e.metric,
                         "lambda": e.lmbda, "default": e.default, **e.info}
                        for e in shipped
                    ],
                },
                indent=2,
            )
        )
        return 0
    print("Architectures (licodec compress --model NAME, licodec train --model NAME):")
    for s in archs:
        print(f"  {s.name:12} {s.description}")
    print()
    if not shipped:
        print("Shipped weights: none installed (pass --weights FILE, or train with `licodec train`).")
        return 0
    print("Shipped weights:")
    for e in shipped:
        k = e.info.get("kodak", {})
        res = f"Kodak {k['bpp']:.3f} bpp / {k['psnr']:.2f} dB" if k else "not evaluated"
        mark = " (default)" if e.default else ""
        lam = f"λ={e.lmbda}" if e.lmbda is not None else ""
        print(f"  {e.name:18} {e.arch:11} q{e.quality} {e.metric:7} {lam:10} {res}{mark}")
    return 0
