"""`licodec eval`: real files, estimate mode, resuming, worker processes, bad input."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from eval_helpers import tiny_weights, write_images

from licodec.cli.main import main
from licodec.codec.api import Codec
from licodec.codec.image_io import read_rgb
from licodec.eval.metrics import ms_ssim, psnr


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("weights")
    return [tiny_weights(d / "q1.safetensors", 8, 1), tiny_weights(d / "q2.safetensors", 16, 2)]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["eval", *argv, "--no-progress", "--threads", "1"])
    out, err = capsys.readouterr()
    return rc, out, err


def _error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("licodec: error: "), err
    return lines[0]


def test_eval_real_files_and_resume(
    tmp_path: Path, weights: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    images = write_images(tmp_path / "imgs", 3, 168, 176)
    later = images[2].rename(tmp_path / images[2].name)  # evaluated on the second run
    out = tmp_path / "out.json"
    rc, stdout, _ = _run(
        capsys,
        str(tmp_path / "imgs"),
        "--weights",
        *map(str, weights),
        "-o",
        str(out),
        "--per-image",
    )
    assert rc == 0
    assert stdout.count("img00.png") == 2  # --per-image: one line per weights file
    first = json.loads(out.read_text())
    assert first["name"] == "licodec wacnn-tiny"
    meta = first["meta"]
    assert meta["mode"] == "real" and meta["bpp_source"] == "file"
    assert meta["num_images"] == 2 and meta["complete"] is True
    assert [p["quality"] for p in meta["points"]] == [1, 2]
    assert first["results"]["quality"] == [1, 2]

    # Every number against an independent recomputation from real files.
    for name, rec in first["per_image"].items():
        rgb = read_rgb(tmp_path / "imgs" / name)
        n_px = rgb.shape[0] * rgb.shape[1]
        assert rec["size"] == [176, 168]
        for i, w in enumerate(weights):
            codec = Codec(weights=w)
            data = codec.compress(rgb)
            assert rec["bytes"][i] == len(data)
            assert rec["bpp"][i] == pytest.approx(8 * len(data) / n_px, rel=1e-12)
            decoded = np.asarray(codec.decompress(data).convert("RGB"))
            assert rec["psnr-rgb"][i] == pytest.approx(psnr(rgb, decoded), abs=1e-9)
            assert rec["ms-ssim-rgb"][i] == pytest.approx(ms_ssim(rgb, decoded), abs=1e-6)
            assert rec["ms-ssim-db-rgb"][i] == pytest.approx(
                -10 * math.log10(1 - rec["ms-ssim-rgb"][i])
            )
            assert rec["encoding_time"][i] > 0 and rec["decoding_time"][i] > 0
    res = first["results"]
    recs = list(first["per_image"].values())
    for i in range(2):
        assert res["bpp"][i] == pytest.approx(np.mean([r["bpp"][i] for r in recs]))
        assert res["psnr-rgb"][i] == pytest.approx(np.mean([r["psnr-rgb"][i] for r in recs]))
    assert res["bpp"][1] > 1.5 * res["bpp"][0]  # gain 16 codes far more than gain 8

    # Resume: a new image is added, the two already done are not redone
    # (their timings would differ if they were).
    later.rename(tmp_path / "imgs" / later.name)
    rc, _, _ = _run(capsys, str(tmp_path / "imgs"), "--weights", *map(str, weights), "-o", str(out))
    assert rc == 0
    second = json.loads(out.read_text())
    assert second["meta"]["num_images"] == 3
    for name in first["per_image"]:
        assert second["per_image"][name] == first["per_image"][name]
    assert set(second["per_image"]) == {"img00.png", "img01.png", "img02.png"}

    # Asking for part of what the file holds changes nothing.
    rc, _, err = _run(capsys, str(tmp_path / "imgs"), "--weights", str(weights[0]), "-o", str(out))
    assert rc == 0, err
    assert json.loads(out.read_text())["per_image"] == second["per_image"]
    # Other weights at an operating point the file covers (q1) cannot continue it.
    other = tiny_weights(tmp_path / "other-q1.safetensors", 12, 1)
    rc, _, err = _run(capsys, str(tmp_path / "imgs"), "--weights", str(other), "-o", str(out))
    assert rc == 6 and "other weights" in _error_line(err)


def test_eval_estimate_mode(
    tmp_path: Path, weights: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from licodec.zoo.weights import load_weights

    write_images(tmp_path / "imgs", 2, 72, 100)
    out = tmp_path / "est.json"
    rc, stdout, _ = _run(
        capsys, str(tmp_path / "imgs"), "--weights", str(weights[1]), "-o", str(out), "--estimate"
    )
    assert rc == 0 and "estimated" in stdout
    data = json.loads(out.read_text())
    assert data["meta"]["mode"] == "estimate" and data["meta"]["bpp_source"] == "likelihoods"
    assert "estimated" in data["name"] and "ESTIMATED" in data["description"]
    model, _ = load_weights(weights[1])
    for name, rec in data["per_image"].items():
        rgb = read_rgb(tmp_path / "imgs" / name)
        x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            fwd = model(x)
        bits = sum(float((-torch.log2(v.double())).sum()) for v in fwd["likelihoods"].values())
        assert rec["bpp"][0] == pytest.approx(bits / (72 * 100), rel=1e-9)
        assert rec["bpp-y"][0] + rec["bpp-z"][0] == pytest.approx(rec["bpp"][0], rel=1e-12)
        x_hat = (fwd["x_hat"].clamp(0, 1)[0].permute(1, 2, 0).double().numpy() * 255).round()
        assert rec["psnr-rgb"][0] == pytest.approx(psnr(rgb, x_hat.astype(np.uint8)), abs=1e-9)
        assert rec["ms-ssim-rgb"][0] is None  # 72 px: too small for five scales
        assert "bytes" not in rec and rec["forward_time"][0] > 0
    # A real-file run cannot resume an estimate file.
    rc, _, err = _run(capsys, str(tmp_path / "imgs"), "--weights", str(weights[1]), "-o", str(out))
    assert rc == 6 and "estimate mode" in _error_line(err)


@pytest.mark.slow  # each spawned worker imports torch and the models: ~40 s on the shared box
def test_eval_workers_match_serial(
    tmp_path: Path, weights: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    write_images(tmp_path / "imgs", 3, 64, 80, seed=5)
    serial, parallel = tmp_path / "serial.json", tmp_path / "parallel.json"
    args = [str(tmp_path / "imgs"), "--weights", str(weights[0])]
    assert _run(capsys, *args, "-o", str(serial))[0] == 0
    assert _run(capsys, *args, "-o", str(parallel), "--workers", "2")[0] == 0
    a, b = json.loads(serial.read_text()), json.loads(parallel.read_text())
    assert b["meta"]["workers"] == 2
    for name in a["per_image"]:
        for key in ("bytes", "bpp", "psnr-rgb"):
            assert a["per_image"][name][key] == b["per_image"][name][key]


def test_eval_bad_inputs(
    tmp_path: Path, weights: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    imgs = tmp_path / "imgs"
    write_images(imgs, 1, 32, 32)
    out = str(tmp_path / "o.json")
    w = str(weights[0])
    cases = [
        ([str(tmp_path / "missing"), "--weights", w, "-o", out], 3, "no such directory"),
        ([str(imgs), "--model", "nope", "-o", out], 5, "unknown model"),
        ([str(imgs), "--weights", str(tmp_path / "x.safetensors"), "-o", out], 5, "not found"),
        ([str(imgs), "--model", "stf-tiny", "--weights", w, "-o", out], 5, "does not match"),
        ([str(imgs), "--model", "wacnn-tiny", "--qualities", "3", "-o", out], 5, "weights"),
        ([str(imgs), "--weights", w, w, "-o", out], 3, "same weights"),
        ([str(imgs), "--weights", w, "-o", str(tmp_path)], 6, "is a directory"),
    ]
    for argv, code, text in cases:
        rc, _, err = _run(capsys, *argv)
        assert rc == code, (argv, err)
        assert text in _error_line(err), (argv, err)
    # A results file that is not ours is never overwritten by a resume.
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"name": "x", "results": {"bpp": [1.0], "psnr-rgb": [30.0]}}))
    rc, _, err = _run(capsys, str(imgs), "--weights", w, "-o", str(foreign))
    assert rc == 6 and "not a licodec eval output" in _error_line(err)
    # An unreadable image is an input error naming the file.
    shutil.copy(imgs / "img00.png", imgs / "broken.png")
    (imgs / "broken.png").write_bytes(b"not a png")
    rc, _, err = _run(capsys, str(imgs), "--weights", w, "-o", out, "--overwrite")
    assert rc == 3 and "broken.png" in _error_line(err)


_ZOO_INDEX = Path(__file__).resolve().parents[1] / "src/licodec/zoo/weights/index.json"
needs_zoo = pytest.mark.skipif(not _ZOO_INDEX.is_file(), reason="no weights ship here")


@needs_zoo
def test_eval_without_a_model_evaluates_the_shipped_default_at_every_quality(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from licodec.zoo.pretrained import default_entry, model_entries

    write_images(tmp_path / "imgs", 1, 48, 48)
    out = tmp_path / "all.json"
    rc, stdout, err = _run(capsys, str(tmp_path / "imgs"), "-o", str(out))
    assert rc == 0, err
    data = json.loads(out.read_text())
    default = default_entry()
    assert data["meta"]["model"] == default.arch
    assert data["results"]["quality"] == sorted(e.quality for e in model_entries(None))
    assert f"{default.arch} q{default.quality}" in stdout


@needs_zoo
def test_eval_adds_operating_points_to_an_existing_file(
    tmp_path: Path, weights: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from licodec.eval.evaluate import resolve_points, run_eval

    imgs = tmp_path / "imgs"
    write_images(imgs, 2, 48, 56, seed=3)
    out = tmp_path / "r.json"
    assert _run(capsys, str(imgs), "--qualities", "4", "-o", str(out))[0] == 0
    first = json.loads(out.read_text())
    assert first["results"]["quality"] == [4]

    # The case: a file holding q4 gets q5 added; q4 is not redone (same timings).
    rc, _, err = _run(capsys, str(imgs), "--qualities", "4,5", "-o", str(out))
    assert rc == 0, err
    second = json.loads(out.read_text())
    assert second["results"]["quality"] == [4, 5] and second["meta"]["complete"] is True
    for name, rec in first["per_image"].items():
        for key in ("bytes", "bpp", "psnr-rgb", "encoding_time"):
            assert second["per_image"][name][key][0] == rec[key][0], key
    assert second["results"]["bpp"][1] > second["results"]["bpp"][0]
    # Adding q6 is interrupted after one image: nothing is lost, and the rerun completes it.
    names = sorted(second["per_image"])

    def interrupt(name: str, record: dict) -> None:
        raise KeyboardInterrupt

    images = sorted(imgs.iterdir())
    with pytest.raises(KeyboardInterrupt):
        run_eval(images, resolve_points(None, [6]), out, progress=False, on_image=interrupt)
    partial = json.loads(out.read_text())
    assert partial["results"]["quality"] == [4, 5, 6] and partial["meta"]["num_images"] == 1
    assert set(partial["pending"]) == {names[1]}
    assert set(partial["pending"][names[1]]["points"]) == {
        p.key for p in resolve_points(None, [4, 5])
    }
    rc, stdout, err = _run(capsys, str(imgs), "--qualities", "6", "-o", str(out))
    assert rc == 0, err  # asking for q6 alone keeps the file's q4 and q5, and says so
    assert "also holds wacnn-lite q4, wacnn-lite q5" in stdout
    third = json.loads(out.read_text())
    assert third["results"]["quality"] == [4, 5, 6] and "pending" not in third
    assert third["meta"]["num_images"] == 2 and third["meta"]["complete"] is True
    for name in names:
        assert (
            third["per_image"][name]["encoding_time"][:2]
            == (second["per_image"][name]["encoding_time"])
        )
    assert (
        third["per_image"][names[0]]["encoding_time"][2]
        == partial["per_image"][names[0]]["encoding_time"][2]
    )
    # Other weights still cannot continue it.
    rc, _, err = _run(capsys, str(imgs), "--weights", str(weights[0]), "-o", str(out))
    assert rc == 6 and "other weights" in _error_line(err)
    assert json.loads(out.read_text()) == third
