"""Start-up: commands that run no model import no torch (issue 16).

Each case runs ``licodec.cli.main.main(argv)`` in a fresh interpreter and
reports, after it returns, whether ``torch`` was imported. Help, usage errors,
``info``, the ``zoo`` listing, ``bd-rate``, ``plot`` and the input and output
errors that compress, decompress and eval find before loading a model must not
import it; their exit codes and messages are pinned here as well, and stderr
must carry no FutureWarning.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

import licodec
from licodec.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]
LIC = REPO / "tests/data/wacnn-lite-v4.lic"
# The tree whose licodec this test imported (a worktree's, with PYTHONPATH set).
SRC = Path(licodec.__file__).resolve().parents[1]

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


@dataclass
class Run:
    rc: int
    torch: bool
    out: str
    err: str  # stderr without the wrapper's report


def _licodec(*argv: str, stdin: bytes = b"", cwd: Path | None = None) -> Run:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env["PYTHONPATH"] = str(SRC)
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *argv],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=cwd or REPO,
        timeout=300,
        check=False,
    )
    err = proc.stderr.decode()
    body, sep, report = err.rpartition("\n@startup ")
    assert sep, f"no report from the wrapper (rc {proc.returncode}): {err[-2000:]}"
    rc, torch = eval(report)
    return Run(int(rc if rc is not None else 0), bool(torch), proc.stdout.decode(), body)


def _no_torch(run: Run) -> None:
    assert not run.torch, f"torch was imported; stderr: {run.err[-2000:]}"
    assert "FutureWarning" not in run.err, run.err


def _png(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    buf = io.BytesIO()
    Image.new("RGB", size, (90, 140, 200)).save(buf, "PNG")
    path.write_bytes(buf.getvalue())
    return path


def _commands() -> list[str]:
    for action in build_parser()._actions:
        choices = getattr(action, "choices", None)
        if isinstance(choices, dict):
            return list(choices)
    raise AssertionError("no sub-commands")


# -- help and usage errors ---------------------------------------------------------


@pytest.mark.parametrize("argv", [["--help"], ["--version"], *([c, "--help"] for c in _commands())])
def test_help_imports_no_torch(argv: list[str]) -> None:
    run = _licodec(*argv)
    assert run.rc == 0, run.err
    assert run.out.startswith("licodec " if argv == ["--version"] else "usage: licodec"), run.out
    _no_torch(run)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], None),
        (["bogus"], "argument COMMAND: invalid choice: 'bogus'"),
        (["compress"], "the following arguments are required: IN"),
        (
            ["compress", "x.png", "--quality", "101"],
            "argument -q/--quality: expected a quality in 0..100, got 101",
        ),
        (
            ["compress", "x.png", "--tile-size", "32"],
            (
                "argument --tile-size: tile size must be at least 64 (the smallest padding multiple), "
                "got 32"
            ),
        ),
        (
            ["decompress", "x.lic", "--max-pixels", "0"],
            "argument --max-pixels: expected a positive integer, got 0",
        ),
        (
            ["bitmap", "x.png", "-o", "m.png", "--device", "tpu"],
            "argument --device: unknown device 'tpu'; choose cpu, cuda, cuda:N, mps or auto",
        ),
        (["info", "--nope", "x.lic"], "unrecognized arguments: --nope"),
        (["eval", "DIR"], "the following arguments are required: -o/--output"),
        (
            ["eval", "DIR", "-o", "x.json", "--qualities", "3,3"],
            "argument --qualities: a quality is listed twice in '3,3'",
        ),
        (["bd-rate", "vtm"], "the following arguments are required: B"),
        (
            ["plot", "-o", "rd.png", "--xlim", "2,1"],
            "argument --xlim: MAX must exceed MIN, got '2,1'",
        ),
    ],
)
def test_usage_errors_import_no_torch(argv: list[str], message: str | None) -> None:
    run = _licodec(*argv)
    assert run.rc == 2, run.err
    lines = run.err.strip().splitlines()
    if message is None:  # no command: the top-level help
        assert lines[0].startswith("usage: licodec"), run.err
    else:
        assert lines[0].startswith("usage: licodec"), run.err
        assert lines[-1].startswith("licodec") and f": error: {message}" in lines[-1], run.err
    _no_torch(run)


# -- commands that run no model -------------------------------------------------------


def test_info_imports_no_torch() -> None:
    run = _licodec("info", str(LIC))
    assert run.rc == 0, run.err
    assert run.out.startswith(f"{LIC}: licodec format 2 (CompressAI rANS streams)\n"), run.out
    assert "  model    wacnn-lite" in run.out
    _no_torch(run)

    run = _licodec("info", "--json", "-", stdin=LIC.read_bytes())
    assert run.rc == 0, run.err
    info = json.loads(run.out)
    assert info["file"] == "<stdin>" and info["model"] == "wacnn-lite"
    assert (info["format_version"], info["coder"]) == (2, "rans")
    _no_torch(run)


def test_info_errors_import_no_torch(tmp_path: Path) -> None:
    missing = tmp_path / "missing.lic"
    run = _licodec("info", str(missing))
    assert (run.rc, run.err) == (3, f"licodec: error: {missing}: no such file\n")
    _no_torch(run)

    data = bytearray(LIC.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.lic"
    bad.write_bytes(bytes(data))
    run = _licodec("info", str(bad))
    assert run.rc == 4, run.err
    assert run.err.startswith(f"licodec: error: {bad}: ") and run.err.count("\n") == 1, run.err
    _no_torch(run)


@pytest.mark.parametrize("argv", [["zoo"], ["zoo", "--json"]])
def test_zoo_listing_imports_no_torch(argv: list[str]) -> None:
    run = _licodec(*argv)
    assert run.rc == 0, run.err
    if "--json" in argv:
        data = json.loads(run.out)
        assert {a["name"] for a in data["architectures"]} >= {"wacnn-lite", "stf", "tcm-l"}
    else:
        assert "76.57 M parameters" in run.out and "Shipped weights" in run.out
    _no_torch(run)


def test_zoo_architectures_match_the_registry() -> None:
    """The torch-free table that `licodec zoo` lists is the registry, entry for entry."""
    from licodec.cli.zoo import ARCHITECTURES
    from licodec.models import get_spec, list_models

    registered = [(n, get_spec(n).description, get_spec(n).paper) for n in list_models()]
    assert [tuple(a) for a in ARCHITECTURES] == registered


def test_bd_rate_and_plot_import_no_torch(tmp_path: Path) -> None:
    run = _licodec("bd-rate", "vtm", "bpg")
    assert run.rc == 0, run.err
    assert "BD-rate" in run.out
    _no_torch(run)

    out = tmp_path / "rd.png"
    run = _licodec("plot", "--published", "vtm,bpg", "-o", str(out))
    assert (run.rc, run.out) == (0, f"wrote {out}\n"), run.err
    assert out.stat().st_size > 0
    _no_torch(run)

    run = _licodec("bd-rate", str(tmp_path / "none.json"), "vtm")
    assert run.rc == 3, run.err
    assert run.err.startswith("licodec: error: ") and run.err.count("\n") == 1, run.err
    _no_torch(run)


# -- input and output errors found before a model loads -------------------------------


def test_compress_input_and_output_errors_import_no_torch(tmp_path: Path) -> None:
    img = _png(tmp_path / "img.png")
    missing = tmp_path / "missing.png"
    empty = tmp_path / "empty"
    empty.mkdir()
    exists = tmp_path / "exists.lic"
    exists.write_bytes(b"x")
    cases = [
        (["compress", str(missing)], 3, f"licodec: error: {missing}: no such file"),
        # a device is checked when the model loads: inputs first, and no torch for them
        (
            ["compress", str(missing), "--device", "cuda"],
            3,
            f"licodec: error: {missing}: no such file",
        ),
        (["compress", str(empty)], 3, f"licodec: error: {empty}: directory has no "),
        (
            ["compress", str(img), "--max-input", "100", "-o", str(tmp_path / "a.lic")],
            3,
            (
                f"licodec: error: {img}: input is larger than the limit of 100 B "
                "(raise it with --max-input)"
            ),
        ),
        (
            ["compress", str(img), "-o", str(exists)],
            6,
            f"licodec: error: {exists} exists; use -f to overwrite",
        ),
        (
            ["compress", str(img), "-o", str(tmp_path / "no" / "a.lic")],
            6,
            f"licodec: error: cannot write {tmp_path / 'no' / 'a.lic'}: directory ",
        ),
        (
            ["compress", str(img), "-o", str(tmp_path / "a.webp")],
            6,
            f"licodec: error: {tmp_path / 'a.webp'}: compress writes .lic files, not .webp",
        ),
        (
            [
                "compress",
                str(img),
                "--weights",
                str(tmp_path / "none.safetensors"),
                "-o",
                str(tmp_path / "a.lic"),
            ],
            5,
            f"licodec: error: weights file not found: {tmp_path / 'none.safetensors'}",
        ),
        (
            ["compress", "-", "--max-input", "10", "-o", str(tmp_path / "s.lic")],
            3,
            (
                "licodec: error: <stdin>: input is larger than the limit of 10 B "
                "(raise it with --max-input)"
            ),
        ),
    ]
    for argv, rc, message in cases:
        run = _licodec(*argv, stdin=b"x" * 100)
        assert run.rc == rc, (argv, run.err)
        assert run.err.startswith(message) and run.err.count("\n") == 1, (argv, run.err)
        _no_torch(run)
    assert not (tmp_path / "a.lic").exists()


def test_decompress_input_and_output_errors_import_no_torch(tmp_path: Path) -> None:
    missing = tmp_path / "missing.lic"
    not_lic = _png(tmp_path / "img.lic")
    out = str(tmp_path / "o.png")
    cases = [
        (["decompress", str(missing)], 3, f"licodec: error: {missing}: no such file"),
        (
            ["decompress", str(missing), "--device", "mps"],
            3,
            f"licodec: error: {missing}: no such file",
        ),
        (
            ["decompress", str(LIC), "--max-input", "100", "-o", out],
            3,
            (
                f"licodec: error: {LIC}: input is larger than the limit of 100 B "
                "(raise it with --max-input)"
            ),
        ),
        (
            ["decompress", str(not_lic), "-o", out],
            4,
            f"licodec: error: {not_lic}: not a licodec file (wrong magic bytes)",
        ),
        (
            ["decompress", str(LIC), "-o", str(tmp_path / "o.xyz")],
            6,
            f"licodec: error: cannot write {tmp_path / 'o.xyz'}: unknown image format '.xyz'",
        ),
        (["decompress", str(LIC), "--max-pixels", "100", "-o", out], 4, f"licodec: error: {LIC}: "),
        (["decompress", "-", "-o", out], 4, "licodec: error: <stdin>: "),
    ]
    for argv, rc, message in cases:
        run = _licodec(*argv, stdin=b"not a licodec file")
        assert run.rc == rc, (argv, run.err)
        assert run.err.startswith(message) and run.err.count("\n") == 1, (argv, run.err)
        _no_torch(run)
    assert not Path(out).exists()


def test_eval_input_and_output_errors_import_no_torch(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    _png(images / "a.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    out = str(tmp_path / "r.json")
    cases = [
        (
            ["eval", str(tmp_path / "missing"), "-o", out],
            3,
            f"licodec: error: {tmp_path / 'missing'}: no such directory",
        ),
        (["eval", str(empty), "-o", out], 3, f"licodec: error: {empty}: no images "),
        (
            ["eval", str(images), "--weights", str(tmp_path / "none.safetensors"), "-o", out],
            5,
            f"licodec: error: weights file not found: {tmp_path / 'none.safetensors'}",
        ),
        (["eval", str(images), "-o", str(images)], 6, f"licodec: error: {images}: is a directory"),
    ]
    for argv, rc, message in cases:
        run = _licodec(*argv)
        assert run.rc == rc, (argv, run.err)
        assert run.err.startswith(message) and run.err.count("\n") == 1, (argv, run.err)
        _no_torch(run)
    assert not Path(out).exists()
