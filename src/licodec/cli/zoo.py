"""``licodec zoo``: registered architectures and shipped pretrained weights.

Listing needs no model code: the architectures come from :data:`ARCHITECTURES`
(a test keeps it equal to the registry, which is filled by importing the model
modules, i.e. torch), and the shipped weights from the zoo's JSON index.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, NamedTuple


class Architecture(NamedTuple):
    """What ``licodec zoo`` shows of a registered architecture."""

    name: str
    description: str
    paper: str


#: Every registered architecture (``licodec.zoo.registry``), sorted by id. Registering,
#: renaming or re-describing a model means updating this table (tests/test_startup.py
#: compares the two).
ARCHITECTURES: tuple[Architecture, ...] = (
    Architecture(
        "elic",
        "ELIC (N=192, M=320, groups 16-16-32-64-192, checkerboard), 32.07 M parameters",
        "He et al., CVPR 2022",
    ),
    Architecture(
        "elic-lite",
        "ELIC reduced for CPU training (N=32, M=128, groups 8-8-16-32-64, 1 block per stage, "
        "context 64-48), variable rate (qualities 1-6)",
        "He et al., CVPR 2022; gain units: Cui et al., CVPR 2021",
    ),
    Architecture("elic-tiny", "ELIC test config", ""),
    Architecture(
        "stf",
        "STF (embed 48, depths 2-2-6-2, window 4, M=384, 12 slices), 99.86 M parameters",
        "Zou et al., CVPR 2022",
    ),
    Architecture(
        "stf-lite",
        "STF reduced for CPU training (embed 8, depths 2-2-2-2, heads 1-2-4-8, M=64, 4 slices, "
        "slice transforms 48-32), 1.4 GFLOP per 256x256, variable rate (qualities 1-6)",
        "Zou et al., CVPR 2022; gain units: Cui et al., CVPR 2021",
    ),
    Architecture(
        "stf-tiny",
        "STF test config",
        "",
    ),
    Architecture(
        "tcm-l",
        "TCM-L (N=128, M=320, 5 slices), 76.57 M parameters",
        "Liu et al., CVPR 2023",
    ),
    Architecture(
        "tcm-lite",
        "TCM reduced for CPU training (N=12, M=128, 4 slices, window 4, no mixture blocks at "
        "1/2 resolution, slice transforms 48-32), 2.4 GFLOP per 256x256, variable rate "
        "(qualities 1-6)",
        "Liu et al., CVPR 2023; gain units: Cui et al., CVPR 2021",
    ),
    Architecture(
        "tcm-m",
        "TCM-M (N=96, M=320, 5 slices), 59.13 M parameters",
        "Liu et al., CVPR 2023",
    ),
    Architecture(
        "tcm-s",
        "TCM-S (N=64, M=320, 5 slices), 45.18 M parameters",
        "Liu et al., CVPR 2023",
    ),
    Architecture(
        "tcm-tiny",
        "TCM test config",
        "",
    ),
    Architecture(
        "wacnn",
        "WACNN (N=192, M=320, 10 slices), 75.24 M parameters",
        "Zou et al., CVPR 2022",
    ),
    Architecture(
        "wacnn-lite",
        "WACNN reduced for CPU training (N=32, M=128, 4 slices, 2 heads), 3.0 GFLOP per "
        "256x256, variable rate (qualities 1-6)",
        "Zou et al., CVPR 2022; gain units: Cui et al., CVPR 2021",
    ),
    Architecture(
        "wacnn-tiny",
        "WACNN test config",
        "",
    ),
)


def register(sub: Any) -> None:
    p = sub.add_parser("zoo", help="list model architectures and shipped weights")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from licodec.zoo.pretrained import entries

    archs = ARCHITECTURES
    shipped = entries()
    if args.json:
        print(
            json.dumps(
                {
                    "architectures": [
                        {
                            "name": s.name,
                            "description": s.description,
                            "paper": s.paper,
                            "shipped_weights": s.name in {e.arch for e in shipped},
                        }
                        for s in archs
                    ],
                    "weights": [
                        {
                            "name": e.name,
                            "arch": e.arch,
                            "quality": e.quality,
                            "metric": e.metric,
                            "lambda": e.lmbda,
                            "default": e.default,
                            **e.info,
                        }
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
        print(
            "Shipped weights: none installed (pass --weights FILE, or train with `licodec train`)."
        )
        return 0
    print("Shipped weights (licodec compress --model NAME --quality Q; no flags: the default):")
    for e in shipped:
        k = e.info.get("kodak", {})
        res = f"Kodak {k['bpp']:.3f} bpp / {k['psnr']:.2f} dB" if k else "not evaluated"
        mark = " (default)" if e.default else ""
        lam = f"λ={e.lmbda}" if e.lmbda is not None else ""
        steps = e.info.get("steps")
        trained = f"{steps:,} steps" if isinstance(steps, int) else "steps unknown"
        print(
            f"  {e.name:18} {e.tag:14} q{e.quality} {e.metric:7} {lam:10} {trained:14} {res}{mark}"
        )
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
            (
                "    licodec import-checkpoint --arch NAME CHECKPOINT.pth.tar NAME.safetensors "
                "--lambda L"
            ),
            "    licodec compress photo.png --weights NAME.safetensors",
        ]
    return "\n".join(lines)
