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
                        {"name": s.name, "description": s.description, "paper": s.paper,
                         "shipped_weights": s.name in {e.arch for e in shipped}}
                        for s in archs
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
    shipped_archs = {e.arch for e in shipped}
    print("Architectures (any of them trains with `licodec train --model NAME`):")
    for s in archs:
        mark = "*" if s.name in shipped_archs else " "
        print(f" {mark}{s.name:12} {s.description}")
    print()
    print(_weights_note(sorted(shipped_archs), [s.name for s in archs]))
    print()
    if not shipped:
        print("Shipped weights: none installed (pass --weights FILE, or train with `licodec train`).")
        return 0
    print("Shipped weights (licodec compress --model NAME --quality Q; no flags: the default):")
    for e in shipped:
        k = e.info.get("kodak", {})
        res = f"Kodak {k['bpp']:.3f} bpp / {k['psnr']:.2f} dB" if k else "not evaluated"
        mark = " (default)" if e.default else ""
        lam = f"λ={e.lmbda}" if e.lmbda is not None else ""
        steps = e.info.get("steps")
        trained = f"{steps:,} steps" if isinstance(steps, int) else "steps unknown"
        print(f"  {e.name:18} {e.tag:14} q{e.quality} {e.metric:7} {lam:10} {trained:14} "
              f"{res}{mark}")
    return 0


# The architectures whose authors published checkpoints (`licodec import-checkpoint`).
AUTHORS_CHECKPOINTS = ("stf", "wacnn", "tcm-s", "tcm-m", "tcm-l")


def _weights_note(shipped: list[str], archs: list[str]) -> str:
    """Which ids code without a weights file, and how to get weights for the others."""
    full = [a for a in AUTHORS_CHECKPOINTS if a in archs and a not in shipped]
    have = ", ".join(shipped) if shipped else "none"
    lines = [
        f"* shipped weights: {have} (`licodec compress --model NAME`; no flag: the default).",
        "  The other ids have no shipped weights and need --weights FILE: train one with "
        "`licodec train`" + ("," if full else "."),
    ]
    if full:
        lines += [
            f"  or convert the authors' published checkpoints of {', '.join(full)}:",
            ("    licodec import-checkpoint --arch NAME CHECKPOINT.pth.tar NAME.safetensors "
             "--lambda L"),
            "    licodec compress photo.png --weights NAME.safetensors",
        ]
    return "\n".join(lines)
