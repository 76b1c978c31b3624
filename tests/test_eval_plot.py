"""RD plots: a readable PNG from results files and bundled published curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from licodec.cli.main import main


def _curve(path: Path, name: str, shift: float) -> Path:
    path.write_text(
        json.dumps(
            {
                "name": name,
                "description": "test",
                "results": {
                    "bpp": [0.1, 0.25, 0.5, 1.0],
                    "psnr-rgb": [27 + shift, 30 + shift, 33 + shift, 36 + shift],
                    "ms-ssim-rgb": [0.9, 0.95, 0.975, 0.99],
                },
            }
        )
    )
    return path


def test_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _curve(tmp_path / "a.json", "Codec A", 0.0)
    b = _curve(tmp_path / "b.json", "Codec B", 1.0)
    out = tmp_path / "figs" / "rd.png"
    assert (
        main(
            [
                "plot",
                str(a),
                str(b),
                "-o",
                str(out),
                "--published",
                "vtm,stf,tcm-l",
                "--title",
                "Kodak",
            ]
        )
        == 0
    )
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] >= 800 and im.size[1] >= 600
        # Not a blank canvas: the curves and text put many distinct colours on it.
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 16) or []) > 50
    assert not list(out.parent.glob(".*"))  # no temporary file left

    out2 = tmp_path / "ms.png"
    assert (
        main(
            [
                "plot",
                str(a),
                "-o",
                str(out2),
                "--metric",
                "ms-ssim",
                "--published",
                "stf,stf-ms-ssim",
            ]
        )
        == 0
    )
    assert out2.stat().st_size > 10_000
    assert "STF has no ms-ssim values; not plotted" in capsys.readouterr().err


def test_plot_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot", "-o", str(tmp_path / "x.png")]) == 3
    assert "nothing to plot" in capsys.readouterr().err
    assert main(["plot", "--published", "vtm", "-o", str(tmp_path / "x.gif")]) == 3
    assert main(["plot", str(tmp_path / "missing.json"), "-o", str(tmp_path / "x.png")]) == 3
    assert main(["plot", "--published", "nope", "-o", str(tmp_path / "x.png")]) == 3
    assert "unknown published curve 'nope'" in capsys.readouterr().err
