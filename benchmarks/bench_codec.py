"""Codec benchmark: compress / decompress time and peak memory (RSS) per image size.

Each measurement runs in a fresh worker process so that its peak RSS
(``ru_maxrss``) belongs to that step alone: ``compress`` reads the image and
writes the ``.lic`` file, ``decompress`` reads it back and writes a PNG. The
model's own footprint is reported as ``model_rss`` (RSS after loading it), so
the codec's working memory is the difference.

Without ``--weights`` a model is built with fixed random weights (seed 0):
timings of the networks are representative, but untrained models produce far
larger streams than trained ones (several bpp instead of < 1), which makes
the entropy coder's share of the time larger than it would be.

Usage::

    python benchmarks/bench_codec.py --models stf --sizes 768x512,6000x4000
    python benchmarks/bench_codec.py --models stf-lite,wacnn-lite --threads 2
    python benchmarks/bench_codec.py --models wacnn-lite --weights W --effort 1 --sizes 6000x4000

Prints a table and writes ``benchmarks/results/codec_<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _shared_dir() -> Path:
    return Path(os.environ.get("LICODEC_SHARED", REPO.parent / "shared"))


def _make_image(width: int, height: int, path: Path) -> str:
    """A photo-like test image: a Kodak picture resized, or smooth noise without ../shared."""
    import numpy as np
    from PIL import Image

    kodak = _shared_dir() / "data" / "kodak" / "kodim23.png"
    if kodak.is_file():
        img = Image.open(kodak).convert("RGB")
        if img.size != (width, height):
            img = img.resize((width, height), Image.LANCZOS)
        source = f"kodim23 resized to {width}x{height}"
    else:
        rng = np.random.default_rng(0)
        coarse = rng.uniform(0, 255, (max(2, height // 32), max(2, width // 32), 3))
        img = Image.fromarray(coarse.astype(np.uint8)).resize((width, height), Image.BICUBIC)
        source = f"smooth noise {width}x{height}"
    img.save(path)
    return source


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((ln for ln in f if ln.startswith("flags")), "")
    except OSError:
        return platform.processor()
    isa = "avx512" if " avx512f" in flags else "avx2" if " avx2" in flags else "sse"
    return f"{platform.processor() or platform.machine()} ({isa})"


def _rss_now() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _load_model(name: str, weights: str | None) -> Any:
    import torch

    if weights:
        from licodec.zoo.weights import load_weights

        return load_weights(weights)[0]
    from licodec.models import create_model

    torch.manual_seed(0)
    model = create_model(name).eval()
    model.update(force=True)
    return model


def worker(args: argparse.Namespace) -> None:
    """One step in this process; prints one JSON line."""
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(args.threads)
    from licodec.codec.api import Codec
    from licodec.codec.image_io import encode_image

    if args.effort:  # refinement needs the λ, which only a weights file records
        codec = Codec(
            weights=args.weights,
            q=50,
            effort=args.effort,
            tile_size=args.tile_size,
            portable=args.portable,
        )
        codec.load()
    else:
        model = _load_model(args.model, args.weights)
        rates = int(getattr(model, "num_rates", 0) or 0)
        codec = Codec(
            model,
            quality=rates // 2 + 1 if rates else None,
            tile_size=args.tile_size,
            portable=args.portable,
        )
    model_rss = _rss_now()
    from licodec.errors import LicodecError

    t0 = time.perf_counter()
    extra: dict[str, Any] = {}
    if args.worker == "compress":
        result = codec.encode(args.input, keep_reconstruction=args.save_recon)
        Path(args.output).write_bytes(result.data)
        if args.save_recon:  # for diagnosing a decode mismatch (adds to the peak RSS)
            import numpy as np

            np.save(args.output + ".recon.npy", np.asarray(result.reconstruction))
        extra = {
            "bytes": len(result.data),
            "bpp": result.bpp,
            "psnr": result.psnr,
            "tiles": result.tiles,
        }
    else:
        try:
            img = codec.decompress(Path(args.input).read_bytes())
            Path(args.output).write_bytes(encode_image(img, args.output))
        except LicodecError as exc:  # still a timing; the table reports the failure
            extra = {"error": f"{type(exc).__name__}: {exc}"}
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_rss": peak, "model_rss": model_rss, **extra}))


def _run_worker(step: str, model: str, args: argparse.Namespace, inp: str, out: str) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        step,
        "--model",
        model,
        "--input",
        inp,
        "--output",
        out,
        "--threads",
        str(args.threads),
        "--tile-size",
        str(args.tile_size),
    ]
    if args.weights:
        cmd += ["--weights", args.weights]
    if args.save_recon:
        cmd += ["--save-recon"]
    if args.effort:
        cmd += ["--effort", str(args.effort)]
    if not args.portable:
        cmd += ["--no-portable"]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{step} {model} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="stf", help="comma-separated model ids (default: stf)")
    p.add_argument("--sizes", default="768x512,6000x4000", help="comma-separated WxH")
    p.add_argument("--weights", help="weights file (one model); default: random weights")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tile-size", type=int, default=1024)
    p.add_argument(
        "--effort",
        type=int,
        default=0,
        help="encoder effort (refinement; needs --weights, quality 50)",
    )
    p.add_argument("--out", help="JSON path (default: benchmarks/results/codec_<time>.json)")
    p.add_argument("--keep", metavar="DIR", help="keep the images and .lic files in DIR")
    p.add_argument(
        "--save-recon",
        action="store_true",
        help="also save the encoder's reconstruction (diagnosis; raises compress RSS)",
    )
    p.add_argument(
        "--portable",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="portable files (float64 entropy parameters; the codec's default)",
    )
    p.add_argument("--worker", choices=["compress", "decompress"], help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--output", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return

    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="licodec-bench-") as tmp_dir:
        tmp = args.keep or tmp_dir
        Path(tmp).mkdir(parents=True, exist_ok=True)
        for w, h in sizes:
            img_path = Path(tmp) / f"img_{w}x{h}.png"
            source = _make_image(w, h, img_path)
            for model in args.models.split(","):
                lic = str(Path(tmp) / f"{model}_{w}x{h}.lic")
                png = str(Path(tmp) / f"{model}_{w}x{h}.png")
                enc = _run_worker("compress", model, args, str(img_path), lic)
                dec = _run_worker("decompress", model, args, lic, png)
                row = {
                    "model": model,
                    "width": w,
                    "height": h,
                    "image": source,
                    "tiles": enc["tiles"],
                    "bytes": enc["bytes"],
                    "bpp": enc["bpp"],
                    "psnr": enc["psnr"],
                    "compress_s": enc["seconds"],
                    "decompress_s": dec["seconds"],
                    "compress_peak_rss_mib": enc["peak_rss"] / 2**20,
                    "decompress_peak_rss_mib": dec["peak_rss"] / 2**20,
                    "model_rss_mib": enc["model_rss"] / 2**20,
                    "decode_error": dec.get("error"),
                }
                rows.append(row)
                print(
                    f"{model:>10} {w}x{h}: {row['tiles']} tiles, {row['bpp']:.3f} bpp, "
                    f"compress {row['compress_s']:.1f} s / {row['compress_peak_rss_mib']:.0f} "
                    f"MiB, decompress {row['decompress_s']:.1f} s / "
                    f"{row['decompress_peak_rss_mib']:.0f} MiB"
                    + (f"  DECODE FAILED: {row['decode_error']}" if row["decode_error"] else ""),
                    flush=True,
                )

    header = (
        f"{'model':>10} {'size':>10} {'tiles':>5} {'bpp':>7} {'comp s':>8} {'dec s':>8} "
        f"{'comp RSS':>9} {'dec RSS':>9} {'model':>7}"
    )
    print("\n" + header)
    for r in rows:
        print(
            f"{r['model']:>10} {r['width']}x{r['height']:<5} {r['tiles']:>5} {r['bpp']:>7.3f} "
            f"{r['compress_s']:>8.1f} {r['decompress_s']:>8.1f} "
            f"{r['compress_peak_rss_mib']:>6.0f} Mi {r['decompress_peak_rss_mib']:>6.0f} Mi "
            f"{r['model_rss_mib']:>4.0f} Mi" + ("  decode FAILED" if r["decode_error"] else "")
        )
    out = (
        Path(args.out)
        if args.out
        else (REPO / "benchmarks" / "results" / f"codec_{time.strftime('%Y%m%d-%H%M%S')}.json")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    import torch

    out.write_text(
        json.dumps(
            {
                "machine": {
                    "cpu_count": os.cpu_count(),
                    "platform": platform.platform(),
                    "torch": torch.__version__,
                    "threads": args.threads,
                    "cpu": _cpu_name(),
                    "load_average": os.getloadavg(),
                },
                "weights": args.weights or "random (seed 0)",
                "tile_size": args.tile_size,
                "portable": args.portable,
                "effort": args.effort,
                "results": rows,
            },
            indent=2,
        )
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
