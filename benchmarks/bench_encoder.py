"""Encoder effort benchmark: BD-rate of ``--effort N`` against effort 0, and its encode time.

Every (image, quality, effort) is coded to real ``.lic`` bytes with the shipped
default model (or ``--weights``); the size is the whole file and the PSNR that
of the decoded pixels (the encoder's reconstruction, which decoding reproduces
bit for bit). BD-rate (PSNR, PCHIP) compares the Kodak-average curve of each
effort with effort 0's over the qualities given. Results are appended to the
JSON as they come, so a stopped run resumes where it was (``--resume``)::

    python benchmarks/bench_encoder.py --kodak ../shared/data/kodak --efforts 0,2,4 \\
        --qualities 20,50,80 --threads 2

``--images N`` keeps the first N images (sorted by name). For fixed-rate weights (the
authors' full-size checkpoints, converted with ``licodec import-checkpoint``) give one
file per rate point, ``--weights a.safetensors,b.safetensors,c.safetensors``: each file
is a point of the curve in place of a quality. Prints a table and
writes ``benchmarks/results/encoder_<timestamp>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _summary(rows: list[dict], efforts: list[int], qualities: list[float]) -> list[dict]:
    """Per effort: images complete for every effort, BD-rate vs effort 0, median seconds."""
    from licodec.eval.bdrate import bjontegaard

    done: dict[str, set[tuple[float, int]]] = {}
    for r in rows:
        done.setdefault(r["image"], set()).add((r["quality"], r["effort"]))
    need = {(q, e) for q in qualities for e in efforts}
    images = sorted(i for i, have in done.items() if need <= have)
    if not images:
        return []

    def curve(effort: int) -> tuple[list[float], list[float], float]:
        bpp, psnr, secs = [], [], []
        for q in qualities:
            sel = [
                r
                for r in rows
                if r["image"] in images and r["quality"] == q and r["effort"] == effort
            ]
            bpp.append(statistics.fmean(r["bpp"] for r in sel))
            psnr.append(statistics.fmean(r["psnr"] for r in sel))
            secs.extend(r["seconds"] for r in sel)
        return bpp, psnr, statistics.median(secs)

    base_bpp, base_psnr, _ = curve(efforts[0])
    out = []
    for e in efforts:
        bpp, psnr, secs = curve(e)
        bd: float | None = 0.0
        if len(qualities) < 2:  # a timing run at one quality: no curve
            bd = None
        elif e != efforts[0]:
            bd = bjontegaard(base_bpp, base_psnr, bpp, psnr, method="pchip", warn=False).bd_rate
        out.append(
            {
                "effort": e,
                "images": len(images),
                "bpp": bpp,
                "psnr": psnr,
                "bd_rate_vs_effort0": bd,
                "median_seconds": secs,
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kodak", default=str(REPO.parent / "shared/data/kodak"))
    ap.add_argument(
        "--weights",
        help="weights file, or comma-separated fixed-rate files, one "
        "per rate point (default: the shipped default model)",
    )
    ap.add_argument("--efforts", default="0,1,2,3,4")
    ap.add_argument("--qualities", default="20,50,80", help="0-100 qualities of the curve")
    ap.add_argument("--images", type=int, default=0, help="first N images only (0: all)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", help="JSON path (default benchmarks/results/encoder_<time>.json)")
    ap.add_argument("--resume", action="store_true", help="keep the rows already in --out")
    args = ap.parse_args(argv)

    import torch

    from licodec import Codec

    torch.set_num_threads(args.threads)
    efforts = [int(v) for v in args.efforts.split(",")]
    files = args.weights.split(",") if args.weights else []
    if len(files) > 1:  # fixed-rate: point i is file i
        qualities = [float(i) for i in range(len(files))]
    else:
        qualities = [float(v) for v in args.qualities.split(",")]
    kodak = Path(args.kodak)
    if not kodak.is_dir():
        print(f"no Kodak images at {kodak}", file=sys.stderr)
        return 2
    images = sorted(kodak.glob("*.png"))[: args.images or None]
    out = Path(
        args.out or REPO / f"benchmarks/results/encoder_{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    if args.resume and out.exists():
        rows = json.loads(out.read_text())["rows"]
    have = {(r["image"], r["quality"], r["effort"]) for r in rows}

    def codec(q: float, e: int) -> Codec:
        if len(files) > 1:
            return Codec(weights=files[int(q)], effort=e)
        return Codec(weights=args.weights, q=q, effort=e)

    codecs = {(q, e): codec(q, e) for q in qualities for e in efforts}
    meta = {
        "machine": platform.processor() or platform.machine(),
        "threads": args.threads,
        "torch": torch.__version__,
        "weights": args.weights or "shipped default",
        "efforts": efforts,
        "qualities": qualities,
    }

    def save() -> None:
        summary = _summary(rows, efforts, qualities)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"meta": meta, "summary": summary, "rows": rows}, indent=1))
        tmp.replace(out)

    for path in images:
        for q in qualities:
            for e in efforts:
                if (path.name, q, e) in have:
                    continue
                res = codecs[(q, e)].encode(path)
                rows.append(
                    {
                        "image": path.name,
                        "quality": q,
                        "effort": e,
                        "bytes": len(res.data),
                        "bpp": res.bpp,
                        "psnr": res.psnr,
                        "seconds": res.seconds,
                    }
                )
                print(
                    f"{path.name} q{q:g} effort {e}: {res.bpp:.4f} bpp {res.psnr:.2f} dB "
                    f"{res.seconds:.1f} s",
                    flush=True,
                )
                save()
    save()
    summary = _summary(rows, efforts, qualities)
    print(f"\n{'effort':>6} {'images':>6} {'BD-rate vs 0':>13} {'median s/image':>15}  bpp @ Q")
    for s in summary:
        bd = "n/a" if s["bd_rate_vs_effort0"] is None else f"{s['bd_rate_vs_effort0']:.2f}%"
        print(
            f"{s['effort']:>6} {s['images']:>6} {bd:>13} "
            f"{s['median_seconds']:>15.1f}  " + " ".join(f"{b:.3f}" for b in s["bpp"])
        )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
