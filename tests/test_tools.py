"""The maintainer tools under tools/ (they are scripts, loaded here by path)."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _curve(path: Path, name: str, bpp: list[float], psnr: list[float]) -> Path:
    path.write_text(json.dumps({"name": name, "results": {"bpp": bpp, "psnr-rgb": psnr}}))
    return path


def test_zoo_table_lists_each_points_gap_to_an_anchor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "base"
    base.mkdir()
    _curve(base / "jpeg.json", "JPEG", [0.2, 0.5, 1.0, 2.0], [24.0, 29.0, 32.0, 36.0])
    mine = _curve(tmp_path / "mine.json", "mine", [0.1, 0.35, 0.9, 2.5], [25.0, 28.0, 31.0, 35.0])
    main = runpy.run_path(str(TOOLS / "zoo_table.py"))["main"]
    assert main([str(mine), "--baselines", str(base), "--points", "jpeg"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| mine |")]
    points = [[c.strip() for c in r.strip("|").split("|")] for r in rows[1:]]
    # below JPEG's range with more PSNR than its lowest point: ahead there
    assert points[0][1] == "0.100" and points[0][-1] == "ahead"
    # JPEG at 0.35 bpp: 24 + (0.15 / 0.3) * 5 = 26.5 dB -> +1.50; at 0.9: 29 + 0.8 * 3 = 31.4 -> -0.40
    assert points[1][-2:] == ["26.50", "+1.50"]
    assert points[2][-2:] == ["31.40", "-0.40"]
    assert "outside its range" in points[3][3]  # above its range: no verdict
