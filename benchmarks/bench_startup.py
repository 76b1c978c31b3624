"""Start-up benchmark: wall time of CLI commands that run no model, each in a fresh process.

Every command runs ``licodec.cli.main.main(argv)`` in a new interpreter
(``python -c``, the same as the ``licodec`` script) and is timed from the
parent, start-up included; the table gives the median over ``--runs`` runs and
whether the command imported torch. ``--before SRC`` times a second licodec
tree (e.g. a ``git worktree`` at an older commit) with the same interpreter,
interleaved run by run with this one so that a background load hits both alike::

    git worktree add --detach /tmp/licodec-before <commit>
    python benchmarks/bench_startup.py --before /tmp/licodec-before --runs 5

``--model`` adds commands that do run one, with the shipped default: decompress of
a 300x200 file (each tree's own format) and of the committed format-2 file,
compress of the 300x200 picture and of kodim23 (when ``../shared`` has it). Prints a table and writes
``benchmarks/results/startup_<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_WRAPPER = """\
import sys
from licodec.cli.main import main
try:
    rc = main(sys.argv[1:])
except SystemExit as exc:
    rc = exc.code
sys.stdout.flush()
sys.stderr.write("\\n@startup " + repr((rc, "torch" in sys.modules)) + "\\n")
"""


def _src(path: str) -> Path:
    """The directory holding the ``licodec`` package: ``path`` itself or its ``src``."""
    p = Path(path).resolve()
    for cand in (p, p / "src"):
        if (cand / "licodec" / "__init__.py").is_file():
            return cand
    raise SystemExit(f"{path}: no licodec package there (nor in its src/)")


def _image(path: Path, width: int, height: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    coarse = rng.uniform(0, 255, (max(2, height // 32), max(2, width // 32), 3))
    Image.fromarray(coarse.astype(np.uint8)).resize((width, height), Image.BICUBIC).save(path)


#: Replaced in an argv by the tree's own file of the 300x200 picture (each tree
#: decodes a file of its own format version).
SMALL = "@SMALL@"


def _commands(tmp: Path, with_model: bool, trees: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """(label, argv) of each command; the files they need are made in ``tmp``."""
    lic = REPO / "tests" / "data" / "wacnn-lite-v4.lic"
    (tmp / "empty").mkdir(exist_ok=True)
    cmds = [
        ("--help", ["--help"]),
        ("compress --help", ["compress", "--help"]),
        ("info FILE", ["info", str(lic)]),
        ("zoo", ["zoo"]),
        ("bd-rate vtm bpg", ["bd-rate", "vtm", "bpg"]),
        ("plot --published vtm", ["plot", "--published", "vtm", "-o", str(tmp / "rd.png")]),
        ("usage error (--quality 99)", ["compress", "x.png", "--quality", "99"]),
        ("compress missing.png", ["compress", str(tmp / "missing.png")]),
        ("decompress missing.lic", ["decompress", str(tmp / "missing.lic")]),
        ("eval missing-dir", ["eval", str(tmp / "missing"), "-o", str(tmp / "r.json")]),
    ]
    if with_model:
        img = tmp / "img300x200.png"
        _image(img, 300, 200)
        for name, src in trees.items():
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "licodec",
                    "compress",
                    "-q",
                    "-f",
                    str(img),
                    "-o",
                    str(tmp / f"small-{name}.lic"),
                ],
                check=True,
                env=_env(src),
            )
        cmds += [
            (
                "decompress 300x200 (model)",
                ["decompress", "-q", "-f", SMALL, "-o", str(tmp / "out.png")],
            ),
            (
                "decompress 301x199 format 2 (model)",
                ["decompress", "-q", "-f", str(lic), "-o", str(tmp / "out2.png")],
            ),
            (
                "compress 300x200 (model)",
                ["compress", "-q", "-f", str(img), "-o", str(tmp / "out.lic")],
            ),
        ]
        kodim23 = REPO.parent / "shared" / "data" / "kodak" / "kodim23.png"
        if kodim23.is_file():
            cmds.append(
                (
                    "compress kodim23 (model)",
                    ["compress", "-q", "-f", str(kodim23), "-o", str(tmp / "k23.lic")],
                )
            )
    return cmds


def _env(src: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env["PYTHONPATH"] = str(src)
    return env


def _once(src: Path, argv: list[str], cwd: Path) -> tuple[float, int, bool]:
    """Wall seconds, exit code and whether torch was imported, for one fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *argv],
        capture_output=True,
        text=True,
        env=_env(src),
        cwd=cwd,
        check=False,
    )
    seconds = time.perf_counter() - t0
    _, sep, report = proc.stderr.rpartition("\n@startup ")
    if not sep:
        raise SystemExit(f"{' '.join(argv)} under {src} crashed:\n{proc.stderr[-2000:]}")
    rc, torch = eval(report)
    return seconds, int(rc or 0), bool(torch)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="runs per command and tree (default 5)")
    p.add_argument("--before", metavar="TREE", help="another licodec tree (repo or src) to time")
    p.add_argument("--model", action="store_true", help="also time two commands that run a model")
    p.add_argument("--out", help="JSON path (default: benchmarks/results/startup_<time>.json)")
    args = p.parse_args()

    trees = {"after": _src(str(REPO))}
    if args.before:
        trees = {"before": _src(args.before), **trees}
    samples: dict[str, dict[str, list[float]]] = {}
    info: dict[str, dict[str, dict[str, object]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_startup_") as d:
        tmp = Path(d)
        cmds = _commands(tmp, args.model, trees)
        for label, argv in cmds:
            samples[label] = {name: [] for name in trees}
            info[label] = {}
            for _ in range(args.runs):
                for name, src in trees.items():  # interleaved: the same load for both
                    own = [str(tmp / f"small-{name}.lic") if a == SMALL else a for a in argv]
                    seconds, rc, torch = _once(src, own, tmp)
                    samples[label][name].append(seconds)
                    info[label][name] = {"rc": rc, "torch": torch}

    width = max(len(label) for label in samples)
    head = f"{'command':{width}}"
    for name in trees:
        head += f"  {name + ' s':>9}  {'torch':>5}  {'rc':>3}"
    if args.before:
        head += f"  {'speed-up':>8}"
    print(f"median wall time of {args.runs} fresh processes each ({sys.executable})")
    print(head)
    rows = []
    for label, argv in cmds:
        line = f"{label:{width}}"
        row: dict[str, object] = {"command": label, "argv": argv}
        for name in trees:
            med = statistics.median(samples[label][name])
            line += (
                f"  {med:9.3f}  {'yes' if info[label][name]['torch'] else 'no':>5}"
                f"  {info[label][name]['rc']:>3}"
            )
            row[name] = {"median_s": med, "runs_s": samples[label][name], **info[label][name]}
        if args.before:
            ratio = statistics.median(samples[label]["before"]) / statistics.median(
                samples[label]["after"]
            )
            line += f"  {ratio:7.1f}x"
            row["speed_up"] = ratio
        print(line)
        rows.append(row)

    out = (
        Path(args.out)
        if args.out
        else REPO / "benchmarks" / "results" / f"startup_{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": {
                    "cpu_count": os.cpu_count(),
                    "platform": platform.platform(),
                    "python": sys.version.split()[0],
                    "load_average_at_end": os.getloadavg(),
                },
                "runs": args.runs,
                "trees": {name: str(src) for name, src in trees.items()},
                "results": rows,
            },
            indent=2,
        )
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
