"""CompressAI-format results: units, aliases, averaging, round trips, bundled curves."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from licodec.errors import FormatError, InputError
from licodec.eval.reference import list_published, load_published
from licodec.eval.results import RDCurve, load_curve, load_results, mean_results, save_results


def test_linear_ms_ssim_gets_a_db_twin() -> None:
    c = RDCurve.from_dict({"name": "x", "results": {"bpp": [0.1, 0.2], "ms-ssim-rgb": [0.9, 0.99]}})
    assert c.results["ms-ssim-db-rgb"] == pytest.approx([10.0, 20.0])
    _, q = c.points("ms-ssim")
    assert list(q) == pytest.approx([10.0, 20.0])
    assert list(c.points("ms-ssim-rgb")[1]) == pytest.approx([0.9, 0.99])


@pytest.mark.parametrize("key", ["ms-ssim-db", "ms-ssim-db-rgb", "ms-ssim-rgb"])
def test_db_ms_ssim_under_any_name_is_read_as_db(key: str) -> None:
    # STF/WACNN files say "ms-ssim-db"; some files put dB under a linear name.
    c = RDCurve.from_dict({"name": "x", "results": {"bpp": [0.1, 0.3], key: [13.0, 20.0]}})
    assert c.results["ms-ssim-db-rgb"] == pytest.approx([13.0, 20.0])
    assert c.results["ms-ssim-rgb"] == pytest.approx([1 - 10**-1.3, 0.99])


def test_psnr_alias_points_sorted_and_side_data_kept() -> None:
    c = RDCurve.from_dict(
        {"name": "y", "results": {"bpp": [0.5, 0.1], "psnr": [33.0, 28.0], "encoding_time": [1, 2]}}
    )
    rate, q = c.points("psnr")
    assert list(rate) == [0.1, 0.5] and list(q) == [28.0, 33.0]
    assert c.results["encoding_time"] == [1.0, 2.0]
    assert not c.has("ms-ssim")


def test_round_trip_and_errors(tmp_path: Path) -> None:
    c = RDCurve(
        name="Mine",
        description="d",
        results={"bpp": [0.1, 0.2], "psnr-rgb": [30.0, 32.0]},
        meta={"k": 1},
        per_image={"a.png": {"bpp": [0.1, 0.2]}},
    )
    save_results(c, tmp_path / "out" / "mine.json")
    back = load_results(tmp_path / "out" / "mine.json")
    assert (back.name, back.description, back.meta, back.per_image) == (
        "Mine",
        "d",
        {"k": 1},
        c.per_image,
    )
    assert back.results == c.results
    assert not list((tmp_path / "out").glob(".*tmp"))  # no temporary file left behind

    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", ')
    with pytest.raises(FormatError, match="malformed JSON"):
        load_results(bad)
    bad.write_text(json.dumps({"name": "x", "results": {"bpp": [0.1, 0.2], "psnr-rgb": [30.0]}}))
    with pytest.raises(FormatError, match="has 1 values but 'bpp' has 2"):
        load_results(bad)
    bad.write_text(json.dumps({"name": "x"}))
    with pytest.raises(FormatError, match="no 'results'"):
        load_results(bad)
    with pytest.raises(InputError, match="no such file"):
        load_results(tmp_path / "missing.json")


def test_mean_results_averages_and_drops_incomplete_metrics() -> None:
    records = [
        {"bpp": [0.2, 0.4], "psnr-rgb": [30.0, 34.0], "ms-ssim-rgb": [0.9, 0.99]},
        {"bpp": [0.4, 0.8], "psnr-rgb": [32.0, 36.0], "ms-ssim-rgb": [None, None]},
    ]
    m = mean_results(records)
    assert m["bpp"] == pytest.approx([0.3, 0.6])
    assert m["psnr-rgb"] == pytest.approx([31.0, 35.0])
    assert "ms-ssim-rgb" not in m and "ms-ssim-db-rgb" not in m
    m = mean_results(records[:1])
    assert m["ms-ssim-db-rgb"] == pytest.approx([10.0, 20.0])


def test_bundled_published_curves_name_their_sources() -> None:
    names = list_published()
    for required in (
        "vtm",
        "bpg",
        "jpeg",
        "webp",
        "jpeg2000",
        "stf",
        "wacnn",
        "tcm-s",
        "tcm-m",
        "tcm-l",
    ):
        assert required in names
        curve = load_published(required)
        assert curve.meta["source"] and curve.meta["reference"]
        rate, q = curve.points("psnr")
        assert len(rate) >= 6 and 0.02 < rate.min() < rate.max() < 5 and 20 < q.min() < q.max() < 50
    assert load_published("bpg_444_x265_ycbcr").name == load_published("bpg").name
    assert load_published("stf-ms-ssim").has("ms-ssim")
    assert load_curve("tcm-l").name == "TCM-L"
    with pytest.raises(InputError, match="neither a results file nor a published curve"):
        load_curve("no-such-curve")


@pytest.mark.shared
@pytest.mark.parametrize(
    "name, file",
    [
        ("vtm", "vtm.json"),
        ("bpg", "bpg_444_x265_ycbcr.json"),
        ("jpeg", "jpeg.json"),
        ("stf", "paper-stf2022_mse.json"),
        ("stf-ms-ssim", "paper-stf2022_ms-ssim.json"),
        ("tcm-l", "paper-tcm2023-large_mse.json"),
    ],
)
def test_bundled_numbers_equal_the_shared_files(shared: Path, name: str, file: str) -> None:
    ours = load_published(name)
    theirs = load_results(shared / "rd_results" / "kodak" / file)
    for key in ("bpp", "psnr-rgb", "ms-ssim-db-rgb"):
        if key in theirs.results:
            a, b = ours.results[key], theirs.results[key]
            assert all(math.isclose(x, y, rel_tol=1e-12) for x, y in zip(a, b, strict=True))
