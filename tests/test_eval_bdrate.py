"""Bjøntegaard delta: hand-computable cases and the published Kodak numbers."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from licodec.cli.main import main
from licodec.eval.bdrate import BDOverlapWarning, bjontegaard, bjontegaard_curves
from licodec.eval.reference import load_published
from licodec.eval.results import load_results

RATE = np.array([0.1, 0.2, 0.4, 0.8, 1.6])
PSNR = np.array([27.0, 29.5, 32.5, 35.0, 38.5])  # concave, like a real codec


@pytest.mark.parametrize("method", ["cubic", "pchip"])
def test_identical_curves_give_zero(method: str) -> None:
    r = bjontegaard(RATE, PSNR, RATE, PSNR, method=method)
    assert r.bd_rate == pytest.approx(0.0, abs=1e-9)
    assert r.bd_quality == pytest.approx(0.0, abs=1e-9)
    assert not r.low_overlap


@pytest.mark.parametrize("method", ["cubic", "pchip"])
def test_half_the_rate_everywhere_is_minus_50_percent(method: str) -> None:
    r = bjontegaard(RATE, PSNR, RATE / 2, PSNR, method=method)
    assert r.bd_rate == pytest.approx(-50.0, abs=1e-6)
    assert r.bd_quality > 0.5  # better quality at equal rate, too
    # Swapping the roles doubles the rate: +100 %.
    assert bjontegaard(RATE / 2, PSNR, RATE, PSNR, method=method).bd_rate == pytest.approx(
        100.0, abs=1e-6
    )


@pytest.mark.parametrize("method", ["cubic", "pchip"])
def test_one_db_better_everywhere(method: str) -> None:
    r = bjontegaard(RATE, PSNR, RATE, PSNR + 1.0, method=method)
    assert r.bd_quality == pytest.approx(1.0, abs=1e-9)
    assert r.bd_rate < -10


def test_small_overlap_warns_and_no_overlap_raises() -> None:
    with pytest.warns(BDOverlapWarning, match="small overlap"):
        r = bjontegaard(RATE, PSNR, RATE * 4, PSNR + 9.0, method="pchip")
    assert r.low_overlap and r.overlap_test < 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a wide anchor around a short curve is fine
        r = bjontegaard(RATE, PSNR, RATE[1:4] * 0.9, PSNR[1:4], method="cubic")
    assert not r.low_overlap and r.overlap_test == pytest.approx(1.0)
    with pytest.raises(ValueError, match="do not overlap"):
        bjontegaard(RATE, PSNR, RATE, PSNR + 20.0)
    with pytest.raises(ValueError, match="at least 2 points"):
        bjontegaard(RATE, PSNR, RATE[:1], PSNR[:1])


# Published Kodak BD-rates against VTM: TCM paper about -12 %, STF about -4 %.
@pytest.mark.parametrize("method", ["cubic", "pchip"])
@pytest.mark.parametrize("name, expected", [("tcm-l", -12.0), ("stf", -4.0)])
def test_published_curves_against_vtm(name: str, expected: float, method: str) -> None:
    r = bjontegaard_curves(load_published("vtm"), load_published(name), "psnr", method, warn=False)
    assert r.bd_rate == pytest.approx(expected, abs=1.0)
    assert r.bd_quality > 0


@pytest.mark.shared
def test_shared_files_give_the_same_numbers(shared: Path) -> None:
    d = shared / "rd_results" / "kodak"
    vtm = load_results(d / "vtm.json")
    tcm = bjontegaard_curves(vtm, load_results(d / "paper-tcm2023-large_mse.json"), method="cubic")
    stf = bjontegaard_curves(vtm, load_results(d / "paper-stf2022_mse.json"), method="cubic")
    assert tcm.bd_rate == pytest.approx(-12.09, abs=0.05)
    assert stf.bd_rate == pytest.approx(-4.45, abs=0.05)


def test_cli_bd_rate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["bd-rate", "tcm-l", "vtm", "--method", "cubic"]) == 0
    out = capsys.readouterr().out
    cubic = next(ln for ln in out.splitlines() if ln.startswith("cubic"))
    value = float(cubic.split("BD-rate")[1].split("%")[0])
    assert value == pytest.approx(-12.09, abs=0.05)
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    assert main(["bd-rate", str(bad), "vtm"]) == 4
    err = capsys.readouterr().err
    assert err.startswith("licodec: error:") and "malformed JSON" in err and err.count("\n") == 1
    assert main(["bd-rate", "stf", "vtm", "--metric", "ms-ssim"]) == 3
    assert "no ms-ssim values" in capsys.readouterr().err


def test_cli_bd_rate_prints_the_shared_ranges_and_warns_on_other_images(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import json

    # 0.03-0.6 bpp at 25-33 dB against VTM (0.048-3.63 bpp, 26.14-46.59 dB): the ranges
    # both cover are 26.14-33 dB and 0.048-0.6 bpp, neither of them all of A's.
    curve = {
        "name": "four images",
        "meta": {
            "tool": "licodec eval",
            "dataset": "kodak",
            "num_images": 4,
            "images": ["kodim01.png", "kodim02.png", "kodim03.png", "kodim04.png"],
        },
        "results": {"bpp": [0.03, 0.1, 0.3, 0.6], "psnr-rgb": [25.0, 28.0, 31.0, 33.0]},
    }
    path = tmp_path / "four.json"
    path.write_text(json.dumps(curve))
    assert main(["bd-rate", str(path), "vtm", "--method", "pchip"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    bd_rate_line = next(ln for ln in lines if ln.startswith("BD-rate ") and "range" in ln)
    bd_psnr_line = next(ln for ln in lines if ln.startswith("BD-PSNR ") and "range" in ln)
    assert "26.14-33.00 dB" in bd_rate_line and "bpp" not in bd_rate_line
    assert "0.048-0.600 bpp" in bd_psnr_line
    assert "different image sets" in err and "A: 4 images of kodak" in err
    assert "B: 24 images of kodak" in err
    # Two curves of the 24 Kodak images: no such warning.
    assert main(["bd-rate", "tcm-l", "vtm"]) == 0
    assert "image sets" not in capsys.readouterr().err
