"""Classical baselines: each codec round-trips real files, curves are monotone, the CLI
writes resumable CompressAI-format JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from eval_helpers import smooth_image, write_images

from licodec.cli.main import main
from licodec.codec.image_io import read_rgb
from licodec.eval import baselines
from licodec.eval.metrics import psnr

# Knob values that give clearly separated points on a 64x48 image.
SMALL_SWEEPS = {
    "jpeg": (10, 50, 90),
    "webp": (10, 50, 90),
    "jpeg2000": (1.0, 2.0, 4.0),  # target bpp (headers alone are ~0.5 bpp here)
    "avif": (20, 50, 80),
    "jxl": (20, 50, 85),
    "hevc": (40, 30, 20),  # QP
}
# How each format's file starts: proof that real files are written.
MAGIC = {
    "jpeg": lambda b: b[:3] == b"\xff\xd8\xff",
    "webp": lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP",
    "jpeg2000": lambda b: b[:4] == b"\xff\x4f\xff\x51",  # SOC + SIZ of a J2K codestream
    "avif": lambda b: b[4:8] == b"ftyp" and b"avif" in b[8:32],
    "jxl": lambda b: b[:2] == b"\xff\x0a" or b[4:8] == b"JXL ",
    "hevc": lambda b: b[:4] == b"\x00\x00\x00\x01" and (b[4] >> 1) == 32,  # VPS NAL unit
}


@pytest.mark.parametrize("name", list(baselines.CODECS))
def test_codec_decodes_what_it_encoded_and_is_monotone(name: str) -> None:
    codec = baselines.get_codec(name)
    if codec.available():
        pytest.skip(codec.available())
    img = smooth_image(48, 64, seed=11)
    sizes, quality = [], []
    for value in codec.ordered(SMALL_SWEEPS[name]):
        data = codec.encode(img, value)
        assert MAGIC[name](data), f"{name} wrote {data[:12]!r}"
        decoded = codec.decode(data)
        assert decoded.shape == img.shape and decoded.dtype == np.uint8
        sizes.append(len(data))
        quality.append(psnr(img, decoded))
    assert baselines.is_monotone(sizes), sizes
    assert baselines.is_monotone(quality), quality
    assert quality[0] > 18 and quality[-1] > 30, quality  # decoded the same picture, not noise


def test_bt601_full_range_conversion_round_trips() -> None:
    img = smooth_image(40, 40, seed=12)
    planes = baselines.rgb_to_ycbcr444(img)
    assert planes.shape == (3, 40, 40)
    grey = np.full((1, 1, 3), 200, np.uint8)
    ycc = baselines.rgb_to_ycbcr444(grey)[:, 0, 0]
    assert list(ycc) == [200, 128, 128]  # full range: Y is not squeezed into 16..235
    assert psnr(img, baselines.ycbcr444_to_rgb(planes)) > 50


def test_ordered_goes_from_low_to_high_quality() -> None:
    assert baselines.get_codec("hevc").ordered([20, 40, 30]) == [40, 30, 20]
    assert baselines.get_codec("jpeg").ordered([90, 10, 50]) == [10, 50, 90]


def _run_cli(images: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "baselines",
            str(images),
            "--codecs",
            "jpeg,webp",
            "-o",
            str(out),
            "--qualities",
            "jpeg:20,60,90",
            "--qualities",
            "webp:20,60,90",
            "--no-progress",
            *extra,
        ]
    )


def test_baselines_cli_end_to_end_and_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "images"
    paths = write_images(images, 2, 168, 176)  # >= 161 px: MS-SSIM is defined
    out = tmp_path / "out"
    assert _run_cli(images, out, "--workers", "2") == 0
    for codec in ("jpeg", "webp"):
        data = json.loads((out / f"{codec}.json").read_text())
        res = data["results"]
        assert data["name"] and data["description"]
        assert res["quality"] == [20, 60, 90]
        assert set(res) >= {"bpp", "psnr-rgb", "ms-ssim-rgb", "ms-ssim-db-rgb", "encoding_time"}
        assert baselines.is_monotone(res["bpp"]) and baselines.is_monotone(res["psnr-rgb"])
        assert data["meta"]["complete"] and data["meta"]["monotone"]
        per = data["per_image"]
        assert sorted(per) == ["img00.png", "img01.png"]
        for key in ("bpp", "psnr-rgb", "ms-ssim-rgb"):
            mean = np.mean([per[n][key] for n in per], axis=0)
            assert res[key] == pytest.approx(list(mean))
        # bpp is the real file size: re-encode one point and count the bytes.
        img = read_rgb(paths[0])
        nbytes = len(baselines.get_codec(codec).encode(img, 60))
        assert per["img00.png"]["bpp"][1] == pytest.approx(8 * nbytes / (168 * 176))
        assert 0.5 < per["img00.png"]["ms-ssim-rgb"][0] < per["img00.png"]["ms-ssim-rgb"][2] < 1
    assert "jpeg" in capsys.readouterr().out

    # Rerun with one more image: the old per-image numbers are kept, only the new one is coded.
    before = json.loads((out / "jpeg.json").read_text())["per_image"]
    before["img00.png"]["marker"] = "kept"  # a recomputation would drop it
    data = json.loads((out / "jpeg.json").read_text())
    data["per_image"] = before
    (out / "jpeg.json").write_text(json.dumps(data))
    write_images(images, 3, 168, 176)  # img00, img01 unchanged; img02 new
    assert _run_cli(images, out) == 0
    after = json.loads((out / "jpeg.json").read_text())
    assert sorted(after["per_image"]) == ["img00.png", "img01.png", "img02.png"]
    assert after["per_image"]["img00.png"]["marker"] == "kept"
    assert after["per_image"]["img01.png"] == before["img01.png"]
    assert after["meta"]["num_images"] == 3

    # Asking for other knob values on an existing output is refused, not mixed in.
    assert (
        main(["baselines", str(images), "--codecs", "jpeg", "-o", str(out), "--qualities", "5,95"])
        == 6
    )
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["baselines", "{tmp}/missing", "-o", "{tmp}/o"], 3, "no such directory"),
        (["baselines", "{tmp}/empty", "-o", "{tmp}/o"], 3, "no images"),
        (
            ["baselines", "{tmp}/images", "--codecs", "jpeg,bpg", "-o", "{tmp}/o"],
            3,
            "unknown codec 'bpg'",
        ),
        # bad numbers (--qualities jpeg:a,b, --workers 0) are usage errors: test_cli_usage.py
        (
            ["baselines", "{tmp}/bad", "--codecs", "jpeg", "-o", "{tmp}/o"],
            3,
            "not an image that Pillow can read",
        ),
    ],
)
def test_baselines_cli_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"\x89PNG not really")
    write_images(tmp_path / "images", 1, 16, 16)
    assert main([a.format(tmp=tmp_path) for a in args]) == code
    err = capsys.readouterr().err
    assert err.startswith("licodec: error:") and message in err and err.count("\n") == 1
