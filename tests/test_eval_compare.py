"""`licodec compare`: equal-size crops of a learned model and classical codecs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from eval_helpers import smooth_image, tiny_weights
from PIL import Image

from licodec.cli.main import main
from licodec.codec.api import Codec
from licodec.eval.baselines import get_codec
from licodec.eval.compare import SIZE_TOLERANCE, match_size
from licodec.eval.metrics import psnr


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("compare")
    image = d / "photo.png"
    Image.fromarray(smooth_image(128, 160, seed=3)).save(image)
    return {
        "image": image,
        "low": tiny_weights(d / "low.safetensors", 8, 1),
        "high": tiny_weights(d / "high.safetensors", 16, 2),
    }


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["compare", *argv, "--threads", "1"])
    out, err = capsys.readouterr()
    return rc, out, err


def test_compare_matches_the_learned_file_size(
    tmp_path: Path, setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    fig, numbers = tmp_path / "fig.png", tmp_path / "fig.json"
    rc, _, err = _run(
        capsys,
        str(setup["image"]),
        "--weights",
        str(setup["high"]),
        "--codecs",
        "jpeg,webp",
        "--crop",
        "16,8,96,64",
        "-o",
        str(fig),
        "--json",
        str(numbers),
    )
    assert rc == 0, err
    with Image.open(fig) as im:
        assert im.format == "PNG" and im.width > 600 and im.height > 200
    data = json.loads(numbers.read_text())
    assert data["crop"] == [16, 8, 96, 64]
    learned, jpeg, webp = data["panels"]
    rgb = np.asarray(Image.open(setup["image"]).convert("RGB"))
    n_px = 128 * 160
    # With one weights file its real file sets the target (--bpp not needed).
    lic = Codec(weights=setup["high"]).compress(rgb)
    assert learned["bytes"] == len(lic)
    assert data["target_bpp"] == pytest.approx(8 * len(lic) / n_px)
    assert learned["bpp"] > 0.9  # far from the codecs' floor: the match is meaningful
    for panel, name in ((jpeg, "jpeg"), (webp, "webp")):
        assert abs(panel["bytes"] - len(lic)) <= SIZE_TOLERANCE * len(lic), panel
        assert panel["bpp"] == pytest.approx(8 * panel["bytes"] / n_px)
        # The label's PSNR is that of the real file at the chosen setting.
        codec = get_codec(name)
        value = float(panel["setting"].split()[-1])
        encoded = codec.encode(rgb, value)
        assert len(encoded) == panel["bytes"]
        assert panel["psnr-rgb"] == pytest.approx(psnr(rgb, codec.decode(encoded)), abs=1e-9)


def test_compare_without_model_uses_bpp(
    tmp_path: Path, setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    numbers = tmp_path / "n.json"
    rc, _, err = _run(
        capsys,
        str(setup["image"]),
        "--model",
        "none",
        "--bpp",
        "1.2",
        "--codecs",
        "jpeg,webp",
        "-o",
        str(tmp_path / "f.png"),
        "--json",
        str(numbers),
    )
    assert rc == 0, err
    target = 1.2 * 128 * 160 / 8
    panels = json.loads(numbers.read_text())["panels"]
    assert [p["codec"] for p in panels] == ["jpeg", "webp"]
    for p in panels:
        assert abs(p["bytes"] - target) <= SIZE_TOLERANCE * target


def test_compare_picks_the_closest_weights(
    tmp_path: Path, setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    rgb = np.asarray(Image.open(setup["image"]).convert("RGB"))
    sizes = {k: len(Codec(weights=setup[k]).compress(rgb)) for k in ("low", "high")}
    assert sizes["high"] > 1.5 * sizes["low"]
    for key in ("low", "high"):
        numbers = tmp_path / f"{key}.json"
        bpp = 8 * sizes[key] / (128 * 160) * 1.1  # near this one, far from the other
        rc, _, err = _run(
            capsys,
            str(setup["image"]),
            "--weights",
            str(setup["low"]),
            str(setup["high"]),
            "--bpp",
            f"{bpp}",
            "--codecs",
            "none",
            "-o",
            str(tmp_path / "f.png"),
            "--json",
            str(numbers),
        )
        assert rc == 0, err
        (panel,) = json.loads(numbers.read_text())["panels"]
        assert panel["bytes"] == sizes[key]


_ZOO_INDEX = Path(__file__).resolve().parents[1] / "src/licodec/zoo/weights/index.json"


@pytest.mark.skipif(not _ZOO_INDEX.is_file(), reason="no weights ship with this checkout")
def test_compare_without_model_uses_the_shipped_default(
    tmp_path: Path, setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from licodec.zoo.pretrained import default_entry

    numbers = tmp_path / "n.json"
    rc, _, err = _run(
        capsys,
        str(setup["image"]),
        "--codecs",
        "jpeg",
        "-o",
        str(tmp_path / "f.png"),
        "--json",
        str(numbers),
    )
    assert rc == 0, err
    panels = json.loads(numbers.read_text())["panels"]
    entry = default_entry()
    assert [p["codec"] for p in panels] == [entry.arch, "jpeg"]
    assert panels[0]["setting"] == f"q{entry.quality}"  # the quality compress uses


def test_match_size_reports_unreachable_targets() -> None:
    rgb = smooth_image(64, 64, seed=1)
    jpeg = get_codec("jpeg")
    # Below JPEG's floor (its headers alone): the lowest quality, not a wrong "match".
    value, data = match_size(jpeg, rgb, 50)
    assert value == 1 and len(data) > 50
    # A reachable target lands within tolerance.
    value, data = match_size(jpeg, rgb, 2500)
    assert abs(len(data) - 2500) <= SIZE_TOLERANCE * 2500


def test_compare_bad_inputs(
    tmp_path: Path, setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    img, fig = str(setup["image"]), str(tmp_path / "f.png")
    w = str(setup["low"])
    cases = [
        ([img, "--model", "none", "--codecs", "jpeg", "-o", fig], 3, "--bpp"),
        ([img, "--model", "none", "--weights", w, "-o", fig], 3, "--model none"),
        ([img, "--bpp", "1", "--codecs", "gif", "-o", fig], 3, "unknown codec"),
        ([img, "--bpp", "1", "--crop", "100,100,80,80", "-o", fig], 3, "outside"),
        ([img, "--bpp", "1", "-o", str(tmp_path / "f.txt")], 3, ".png"),
        ([img, "--weights", w, str(setup["high"]), "--codecs", "none", "-o", fig], 3, "--bpp"),
        ([img, "--model", "nope", "-o", fig], 5, "unknown model"),
        ([str(tmp_path / "none.png"), "--bpp", "1", "-o", fig], 3, "none.png: no such file"),
    ]
    for argv, code, text in cases:
        rc, _, err = _run(capsys, *argv)
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        assert rc == code, (argv, err)
        assert len(lines) == 1 and lines[0].startswith("licodec: error: "), (argv, err)
        assert text in lines[0], (argv, err)
    assert not Path(fig).exists()
