"""Put trained weights into the package's model zoo (src/licodec/zoo/weights/).

Writes a weights file made by ``licodec train`` into the zoo (``--half``: large
tensors as float16), evaluates the shipped file on Kodak with ``licodec eval``
(resumable; or takes an existing ``--eval`` JSON of that very file), and adds
one index entry per quality (a variable-rate file gets one per rate, all
naming the same file) with the Kodak numbers and how the weights were
trained.

Released weights are frozen: a file already in the zoo is never replaced. The
new file becomes the next version of its architecture (``ARCH-vN``), which
encoding then picks by default; files made with earlier versions keep
decoding, because the decoder finds weights by the digest a file names.

    python tools/ship_zoo.py runs/wacnn-lite/model.safetensors --half \
        --file wacnn-lite-v5.safetensors --kodak ../shared/data/kodak \
        --eval runs/eval/wacnn-lite.json --default-quality 3 \
        --hardware "2-core CPU (AMD EPYC)" --hours 2.1 --command "licodec train ..."
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ZOO = Path(__file__).resolve().parents[1] / "src" / "licodec" / "zoo" / "weights"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", help="weights file written by licodec train")
    p.add_argument(
        "--eval",
        required=True,
        help="licodec eval JSON of the shipped file (made with --kodak if absent)",
    )
    p.add_argument("--kodak", help="Kodak folder, to evaluate the shipped file")
    p.add_argument("--half", action="store_true", help="store large tensors as float16")
    p.add_argument("--file", required=True, help="file name inside the zoo")
    p.add_argument("--default-quality", type=int, help="make this quality the package default")
    p.add_argument("--command", action="append", default=[], help="training command (repeatable)")
    p.add_argument("--hardware", required=True)
    p.add_argument("--hours", type=float, required=True, help="training wall-clock hours")
    p.add_argument(
        "--prior-steps",
        type=int,
        default=0,
        help="steps of the run these weights were initialised from (--init)",
    )
    p.add_argument("--zoo", type=Path, default=ZOO, help="zoo folder (default: the package's)")
    args = p.parse_args(argv)
    zoo: Path = args.zoo

    sys.path.insert(0, str(ZOO.parents[2]))
    from licodec.cli.main import main as licodec_main
    from licodec.eval.results import load_results
    from licodec.zoo.weights import load_weights, rates_of, save_weights

    model, config = load_weights(args.weights)  # verifies the digest
    zoo.mkdir(parents=True, exist_ok=True)
    index_path = zoo / "index.json"
    index: dict[str, Any] = json.loads(index_path.read_text()) if index_path.is_file() else {}
    dest = zoo / args.file
    if dest.exists() or any(e["file"] == args.file for e in index.get("weights", [])):
        raise SystemExit(
            f"{args.file} is a released file, and released weights are frozen: "
            "ship these as a new --file (the next version)"
        )
    staged = zoo / (args.file + ".staged")  # becomes `dest` only once everything checks out
    own = {"format", "arch", "kwargs", "digest", "storage"}
    save_weights(model, staged, {k: v for k, v in config.items() if k not in own}, half=args.half)
    _, config = load_weights(staged)
    print(f"wrote {staged} (digest {config['digest']})")
    if args.kodak:
        rc = licodec_main(
            [
                "eval",
                args.kodak,
                "--weights",
                str(staged),
                "-o",
                args.eval,
                "--dataset",
                "kodak",
                "--name",
                f"licodec {config['arch']}",
            ]
        )
        if rc:
            return rc
    arch = str(config["arch"])
    qualities = rates_of(config) or [int(config["quality"])]
    lambdas = config.get("lambdas") or [config.get("lambda")]
    if args.default_quality is not None and args.default_quality not in qualities:
        raise SystemExit(f"--default-quality {args.default_quality}: the file has {qualities}")

    res = load_results(args.eval)
    points = res.meta.get("points", [])
    digests = {pt.get("digest") for pt in points}
    if digests != {config["digest"]}:
        raise SystemExit(
            f"{args.eval} was not made with {staged} (digest differs); give --kodak to evaluate it"
        )
    if res.meta.get("mode") != "real" or not res.meta.get("complete", True):
        raise SystemExit(f"{args.eval} is not a complete evaluation with real files")
    kodak: dict[int, dict[str, float]] = {}
    r = res.results
    for i, pt in enumerate(points):
        q = int(pt["quality"] if pt.get("quality") is not None else qualities[0])
        kodak[q] = {
            "bpp": round(r["bpp"][i], 4),
            "psnr": round(r["psnr-rgb"][i], 3),
            "ms_ssim": round(r["ms-ssim-rgb"][i], 5),
        }
    missing = [q for q in qualities if q not in kodak]
    if missing:
        raise SystemExit(f"{args.eval} has no result for qualities {missing}")

    items = list(index.get("weights", []))
    released = [e for e in items + index.get("retired", []) if e["arch"] == arch]
    if any(e["digest"] == config["digest"] for e in released):
        raise SystemExit(f"these weights ({config['digest']}) are already released")
    version = 1 + max((int(e.get("version", 1)) for e in released), default=0)
    default_q = args.default_quality
    if default_q is not None:
        for e in items:
            e.pop("default", None)
    for i, q in enumerate(qualities):
        entry: dict[str, Any] = {
            "name": f"{arch}-v{version}-q{q}",
            "arch": arch,
            "version": version,
            "quality": q,
            "file": args.file,
            "metric": config.get("metric", "mse"),
            "lambda": lambdas[i] if i < len(lambdas) else None,
            "digest": config["digest"],
            "steps": int(config.get("steps") or 0) + args.prior_steps,
            "data": config.get("data"),
            "crop": config.get("crop"),
            "batch_size": config.get("batch_size"),
            "training": {"hardware": args.hardware, "hours": args.hours, "commands": args.command},
            "kodak": kodak[q],
        }
        if q == default_q:
            entry["default"] = True
        items.append(entry)
    index["weights"] = items
    staged.replace(dest)
    tmp = index_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(index, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(index_path)
    size = (zoo / args.file).stat().st_size / 1e6
    print(
        f"shipped {args.file} ({size:.1f} MB, {arch}-v{version}, qualities {qualities}); "
        f"{len(items)} zoo entries"
    )
    del model
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
