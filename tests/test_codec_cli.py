"""The compress / decompress / info commands, run in-process through ``main``."""

from __future__ import annotations

import io
import json
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from codec_helpers import one_thread, photo, png_bytes, weights_file  # noqa: F401
from PIL import Image

from licodec.cli.main import main
from licodec.codec.api import Codec
from licodec.codec.container import FORMAT_VERSION, MAGIC, parse, serialise
from licodec.errors import EXIT_FORMAT, EXIT_INPUT, EXIT_MODEL, EXIT_OUTPUT


@pytest.fixture(scope="module")
def wdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("weights")
    weights_file(d, "wacnn-tiny", seed=0)
    weights_file(d, "wacnn-tiny", seed=1)
    return d


def _w(wdir: Path, seed: int = 0) -> str:
    return str(wdir / f"wacnn-tiny-{seed}.safetensors")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _images(d: Path) -> dict[str, Path]:
    d.mkdir(parents=True, exist_ok=True)
    rgb = photo(37, 53, seed=1)
    alpha = np.random.default_rng(2).integers(0, 256, (37, 53), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    paths = {
        "rgb": d / "rgb.png",
        "gray": d / "gray.png",
        "rgba": d / "rgba.png",
        "rot": d / "rot.jpg",
    }
    Image.fromarray(rgb).save(paths["rgb"])
    Image.fromarray(rgb[:, :, 0]).save(paths["gray"])
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(paths["rgba"])
    Image.fromarray(rgb).save(paths["rot"], quality=90, exif=exif.tobytes())
    return paths


def test_cli_directory_round_trip_is_bit_exact(
    tmp_path: Path, wdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _images(tmp_path / "in")
    rc, _, err = _run(
        capsys,
        "compress",
        str(tmp_path / "in"),
        "-o",
        str(tmp_path / "lic"),
        "--weights",
        _w(wdir),
        "--threads",
        "1",
    )
    assert rc == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 4 and all("bpp" in ln and "PSNR" in ln for ln in lines)
    rc, _, err = _run(
        capsys,
        "decompress",
        str(tmp_path / "lic"),
        "-o",
        str(tmp_path / "out"),
        "--weights",
        _w(wdir),
    )
    assert rc == 0, err
    codec = Codec(weights=_w(wdir))
    for key, path in paths.items():
        decoded = Image.open(tmp_path / "out" / f"{path.stem}.png")
        expected = codec.encode(path, keep_reconstruction=True).reconstruction
        assert decoded.mode == expected.mode == {"gray": "L", "rgba": "RGBA"}.get(key, "RGB")
        assert np.array_equal(np.asarray(decoded), np.asarray(expected)), key
    assert Image.open(tmp_path / "out" / "rot.png").size == (37, 53)  # EXIF applied


def test_cli_single_file_defaults_info_and_overwrite(
    tmp_path: Path, wdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "pic.png"
    Image.fromarray(photo(70, 90, seed=4)).save(src)
    rc, _, err = _run(
        capsys, "compress", str(src), "--weights", _w(wdir), "--tile-size", "64", "--quiet"
    )
    assert rc == 0 and err == ""
    lic = tmp_path / "pic.lic"
    assert parse(lic.read_bytes()).tile_size == (64, 64)
    before = lic.read_bytes()
    rc, _, err = _run(capsys, "compress", str(src), "--weights", _w(wdir, 1))
    assert rc == EXIT_OUTPUT and "exists; use -f to overwrite" in err
    assert lic.read_bytes() == before
    rc, _, err = _run(capsys, "compress", str(src), "--weights", _w(wdir), "-f", "--quiet")
    assert rc == 0 and lic.read_bytes() != before  # default tile size: one tile now
    rc, out, _ = _run(capsys, "info", str(lic))
    assert rc == 0 and "wacnn-tiny" in out and "90x70 RGB" in out and "1 (untiled)" in out
    assert "not portable" not in out
    rc, out, _ = _run(capsys, "info", "--json", str(lic))
    d = json.loads(out)
    assert d["file_bytes"] == lic.stat().st_size and d["overhead_bytes"] < 40
    assert d["portable"] is True
    fast = tmp_path / "fast.lic"
    rc, _, err = _run(
        capsys,
        "compress",
        str(src),
        "-o",
        str(fast),
        "--no-portable",
        "--quiet",
        "--weights",
        _w(wdir),
    )
    assert rc == 0, err
    rc, out, _ = _run(capsys, "info", str(fast))
    assert "not portable (float32 entropy parameters)" in out
    assert json.loads(_run(capsys, "info", "--json", str(fast))[1])["portable"] is False
    rc, _, err = _run(
        capsys,
        "decompress",
        str(fast),
        "-o",
        str(tmp_path / "fast.png"),
        "--weights",
        _w(wdir),
        "--quiet",
    )
    assert rc == 0, err
    rc, _, err = _run(capsys, "decompress", str(lic), "--weights", _w(wdir))
    assert rc == EXIT_OUTPUT and "pic.png exists" in err  # the input image is not clobbered
    rc, _, err = _run(
        capsys, "decompress", str(lic), "-o", str(tmp_path / "d.webp"), "--weights", _w(wdir)
    )
    assert rc == 0, err
    with Image.open(tmp_path / "d.webp") as im:  # the extension picks the format
        assert im.format == "WEBP" and im.size == (90, 70)
    (tmp_path / "od").mkdir()  # an existing directory as -o for one input
    rc, _, err = _run(
        capsys, "compress", str(src), "-o", str(tmp_path / "od"), "--quiet", "--weights", _w(wdir)
    )
    assert rc == 0 and (tmp_path / "od" / "pic.lic").read_bytes() == lic.read_bytes()


def test_cli_stdin_stdout(
    tmp_path: Path,
    wdir: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rgb = photo(20, 31, seed=6)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(png_bytes(Image.fromarray(rgb)))))
    assert main(["compress", "-", "--weights", _w(wdir)]) == 0
    data, err = capsysbinary.readouterr()
    assert data[:2] == MAGIC and b"<stdin> -> <stdout>" in err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["decompress", "-", "-o", "-", "--weights", _w(wdir)]) == 0
    png, _ = capsysbinary.readouterr()
    expected = Codec(weights=_w(wdir)).encode(rgb, keep_reconstruction=True).reconstruction
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), np.asarray(expected))


def _bad_lic_files(d: Path, good: bytes) -> dict[str, tuple[Path, int, str]]:
    def crc(b: bytes) -> bytes:
        return b[:-4] + zlib.crc32(b[:-4]).to_bytes(4, "little")

    c = parse(good)
    c.model_id = "no-such-model"
    unknown = serialise(c)
    c = parse(good)
    c.check_crc ^= 0xFFFF
    recon = serialise(c)
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x10
    c = parse(good)
    c.width = c.height = 1 << 15  # 2^30 pixels declared by a file of a few hundred bytes
    big = serialise(c)
    zero = bytearray(good)
    width_at = 5 + len("wacnn-tiny") + 8  # magic, version, flags, q/m, id, digest
    assert zero[width_at] == 30
    zero[width_at] = 0
    files = {
        "truncated": (good[: len(good) - 7], EXIT_FORMAT, "truncated or corrupt"),
        "bitflip": (bytes(flipped), EXIT_FORMAT, "CRC32 mismatch"),
        "empty": (b"", EXIT_FORMAT, "file is empty"),
        "foreign": (png_bytes(Image.new("RGB", (4, 4))), EXIT_FORMAT, "wrong magic"),
        "future": (MAGIC + bytes([FORMAT_VERSION + 1]) + good[3:], EXIT_FORMAT, "newer"),
        "unknown_model": (unknown, EXIT_MODEL, "needs model 'no-such-model', which this"),
        "check_crc": (recon, EXIT_MODEL, "checksum mismatch"),
        "absurd_size": (big, EXIT_FORMAT, "exceeds the limit of 268435456 pixels"),
        "zero_size": (crc(bytes(zero)), EXIT_FORMAT, "image size 0x40 is empty"),
    }
    out = {}
    d.mkdir(parents=True, exist_ok=True)
    for name, (data, code, msg) in files.items():
        p = d / f"{name}.lic"
        p.write_bytes(data)
        out[name] = (p, code, msg)
    return out


def _assert_one_line_error(rc: int, err: str, code: int, pattern: str) -> None:
    import re

    assert rc == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("licodec: error: "), err
    assert "Traceback" not in err and re.search(pattern, lines[0]), lines[0]


def test_cli_bad_inputs_fail_with_one_line_and_leave_nothing(
    tmp_path: Path, wdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = Codec(weights=_w(wdir)).compress(photo(40, 30, seed=8))
    bad = _bad_lic_files(tmp_path / "bad", good)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for name, (path, code, msg) in bad.items():
        target = out_dir / f"{name}.png"
        rc, _, err = _run(capsys, "decompress", str(path), "-o", str(target), "--weights", _w(wdir))
        _assert_one_line_error(rc, err, code, msg)
        assert str(path) in err  # the message names the file
        if code == EXIT_FORMAT:
            rc, _, err = _run(capsys, "info", str(path))
            _assert_one_line_error(rc, err, EXIT_FORMAT, msg)
    # weights mismatch: valid file, other weights
    (tmp_path / "good.lic").write_bytes(good)
    rc, _, err = _run(
        capsys,
        "decompress",
        str(tmp_path / "good.lic"),
        "-o",
        str(out_dir / "g.png"),
        "--weights",
        _w(wdir, 1),
    )
    _assert_one_line_error(rc, err, EXIT_MODEL, "encoded with wacnn-tiny weights")
    # compress side
    (tmp_path / "text.png").write_text("not an image at all")
    Image.fromarray(photo(8, 8)).save(tmp_path / "ok.png")
    cases = [
        (["compress", str(tmp_path / "text.png")], EXIT_INPUT, "not an image"),
        (["compress", str(tmp_path / "missing.png")], EXIT_INPUT, "no such file"),
        (["decompress", str(tmp_path / "missing.lic")], EXIT_INPUT, "no such file"),
        (
            ["compress", str(tmp_path / "ok.png"), "-o", str(tmp_path / "nodir" / "x.lic")],
            EXIT_OUTPUT,
            "does not exist",
        ),
        (
            ["compress", str(tmp_path / "ok.png"), "-o", str(tmp_path / "ok.png" / "x.lic")],
            EXIT_OUTPUT,
            "does not exist|cannot write",
        ),
        (
            [
                "compress",
                str(tmp_path / "ok.png"),
                "-o",
                str(tmp_path / "x.lic"),
                "--weights",
                str(tmp_path / "nope.safetensors"),
            ],
            EXIT_MODEL,
            "weights file not found",
        ),
        (
            [
                "compress",
                str(tmp_path / "ok.png"),
                "-o",
                str(tmp_path / "x.lic"),
                "--model",
                "nope",
            ],
            EXIT_MODEL,
            "unknown model 'nope'",
        ),
        (
            [
                "decompress",
                str(tmp_path / "good.lic"),
                "-o",
                str(out_dir / "g.xyz"),
                "--weights",
                _w(wdir),
            ],
            EXIT_OUTPUT,
            "unknown image format",
        ),
    ]
    for argv, code, msg in cases:
        if "--weights" not in argv and argv[0] == "compress" and "--model" not in argv:
            argv = [*argv, "--weights", _w(wdir)]
        rc, _, err = _run(capsys, *argv)
        _assert_one_line_error(rc, err, code, msg)
    leftovers = sorted(p.name for p in out_dir.iterdir()) + sorted(
        p.name for p in tmp_path.iterdir() if p.name.startswith(".") or p.suffix == ".lic"
    )
    assert leftovers == ["good.lic"], leftovers


def test_cli_no_pretrained_weights_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from licodec.zoo import pretrained

    monkeypatch.setattr(pretrained, "_weights_dir", lambda: tmp_path / "empty-zoo")
    Image.fromarray(photo(8, 8)).save(tmp_path / "a.png")
    rc, _, err = _run(capsys, "compress", str(tmp_path / "a.png"))
    _assert_one_line_error(rc, err, EXIT_MODEL, "no pretrained weights are installed.*--weights")
    assert not (tmp_path / "a.lic").exists()


def test_cli_multi_file_continues_after_a_bad_input(
    tmp_path: Path, wdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Image.fromarray(photo(9, 9)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"broken")
    Image.fromarray(photo(9, 9, seed=2)).save(tmp_path / "c.png")
    rc, _, err = _run(
        capsys,
        "compress",
        str(tmp_path / "a.png"),
        str(tmp_path / "b.png"),
        str(tmp_path / "c.png"),
        "-o",
        str(tmp_path / "o"),
        "--weights",
        _w(wdir),
    )
    assert rc == EXIT_INPUT
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.lic", "c.lic"]
    errors = [ln for ln in err.splitlines() if ln.startswith("licodec: error:")]
    assert len(errors) == 1 and "b.png" in errors[0] and "Traceback" not in err
    rc, _, err = _run(
        capsys,
        "compress",
        str(tmp_path / "a.png"),
        str(tmp_path / "c.png"),
        "-o",
        "-",
        "--weights",
        _w(wdir),
    )
    _assert_one_line_error(rc, err, EXIT_OUTPUT, "stdout")
