"""The command line as docs/cli.md documents it: usage errors, `python -m licodec`, the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from licodec.cli.main import main

REPO = Path(__file__).resolve().parents[1]
ZOO_INDEX = REPO / "src/licodec/zoo/weights/index.json"


def _python(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env["PYTHONPATH"] = str(REPO / "src")
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2, (argv, err)
    return err


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "DIR", "-o", "x.json", "--qualities", "1,x"],
        ["eval", "DIR", "-o", "x.json", "--qualities", "0"],
        ["eval", "DIR", "-o", "x.json", "--qualities", "3,3"],
        ["eval", "DIR", "-o", "x.json", "--workers", "0"],
        ["compare", "im.png", "-o", "f.png", "--bpp", "-1"],
        ["compare", "im.png", "-o", "f.png", "--bpp", "nan"],
        ["compare", "im.png", "-o", "f.png", "--crop", "1,2,3"],
        ["compare", "im.png", "-o", "f.png", "--qualities", "99"],
        ["bitmap", "im.png", "-o", "m.png", "--vmax", "0"],
        ["bitmap", "im.png", "-o", "m.png", "--quality", "75"],
        ["baselines", "DIR", "-o", "out", "--workers", "0"],
        ["baselines", "DIR", "-o", "out", "--qualities", "jpeg:a,b"],
        ["plot", "-o", "rd.png", "--xlim", "2,1"],
        ["train", "--steps", "0"],
        ["train", "--quality", "7"],
        ["train", "--batch-size", "x"],
        ["train", "--lr", "-1"],
        ["demo", "--quality", "175"],
        ["import-checkpoint", "a.pth", "b.safetensors", "--arch", "stf", "--quality", "0"],
    ],
)
def test_bad_numbers_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    err = _usage_error(argv, capsys)
    assert err.startswith(f"usage: licodec {argv[0]} "), err  # the sub-command's usage
    assert f"licodec {argv[0]}: error: argument " in err


def test_unknown_option_prints_the_sub_commands_usage() -> None:
    proc = _python("-m", "licodec", "compress", "x.png", "--bogus")
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: licodec compress "), proc.stderr
    assert "licodec compress: error: unrecognized arguments: --bogus" in proc.stderr
    # before the sub-command it is the top level's
    proc = _python("-m", "licodec", "--bogus", "info", "x.lic")
    assert proc.returncode == 2 and proc.stderr.startswith("usage: licodec [-h]"), proc.stderr


def test_python_dash_m_licodec_is_the_command() -> None:
    proc = _python("-m", "licodec", "--version")
    assert proc.returncode == 0 and proc.stdout.startswith("licodec "), proc.stderr
    # --help stays instant: no torch
    code = (
        "import sys; from licodec.cli.main import main\n"
        "try:\n    main(['bd-rate', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    proc = _python("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("False"), proc.stdout
    assert "in %)" in proc.stdout and "%%" not in proc.stdout  # argparse leaves descriptions as is


def test_import_is_quiet_and_the_api_is_listed() -> None:
    code = (
        "import licodec\n"
        "print(sorted(n for n in dir(licodec) if not n.startswith('_')))\n"
        "licodec.create_model('wacnn-tiny')\n"
    )
    proc = _python("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert "torch.jit.script" not in proc.stderr and "FutureWarning" not in proc.stderr, proc.stderr
    listed = json.loads(proc.stdout.strip().replace("'", '"'))
    for name in ("Codec", "compress", "create_model", "decompress", "load_model"):
        assert name in listed


@pytest.mark.skipif(not ZOO_INDEX.is_file(), reason="no weights ship with this checkout")
def test_load_model_gives_the_shipped_model_as_a_module(tmp_path: Path) -> None:
    import torch

    import licodec
    from licodec.errors import ModelError
    from licodec.models import create_model
    from licodec.zoo.pretrained import default_entry, resolve_entry
    from licodec.zoo.weights import save_weights, weights_digest

    entry = default_entry()
    model = licodec.load_model()
    assert isinstance(model, torch.nn.Module) and not model.training
    assert model.arch == entry.arch  # type: ignore[attr-defined]
    assert weights_digest(model).hex() == entry.digest
    x = torch.rand(1, 3, 64, 64)
    rate = {"rate": entry.quality - 1} if getattr(model, "num_rates", 0) else {}
    with torch.no_grad():
        enc = model.compress(x, **rate)  # type: ignore[operator]  # coder tables are built
        assert model.decompress(**enc, **rate)["x_hat"].shape == x.shape  # type: ignore[operator]
    q1 = licodec.load_model(entry.arch, 1)
    assert weights_digest(q1).hex() == resolve_entry(entry.arch, 1).digest
    with pytest.raises(ModelError, match="import-checkpoint"):
        licodec.load_model("stf")
    with pytest.raises(ModelError, match="unknown model"):
        licodec.load_model("nope")
    with pytest.raises(ModelError, match="quality 99"):
        licodec.load_model(entry.arch, 99)
    # a weights file of one's own
    tiny = create_model("wacnn-tiny").eval()
    path = save_weights(tiny, tmp_path / "t.safetensors", {"quality": 2})
    loaded = licodec.load_model(weights=path)
    assert weights_digest(loaded) == weights_digest(tiny) and not loaded.training
    with pytest.raises(ModelError, match="holds wacnn-tiny"):
        licodec.load_model("stf", weights=path)
