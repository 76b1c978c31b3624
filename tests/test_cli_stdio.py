"""CLI behaviour that depends on process state: each command runs in a fresh interpreter."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from codec_helpers import one_thread, photo, weights_file  # noqa: F401
from PIL import Image

from licodec.cli.main import main
from licodec.errors import EXIT_OUTPUT


def _licodec(*argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from licodec.cli.main import main; sys.exit(main())",
            *argv,
        ],
        input=stdin,
        capture_output=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def coded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    d = tmp_path_factory.mktemp("stdio")
    weights = weights_file(d, "wacnn-tiny")
    src = d / "in.png"
    Image.fromarray(photo(20, 28, seed=3)).save(src)
    assert (
        main(
            [
                "compress",
                str(src),
                "-o",
                str(d / "in.lic"),
                "--weights",
                str(weights),
                "--threads",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "decompress",
                str(d / "in.lic"),
                "-o",
                str(d / "ref.png"),
                "--weights",
                str(weights),
                "--threads",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    return d / "in.lic", weights, np.asarray(Image.open(d / "ref.png"))


@pytest.mark.parametrize("form", ["file to -", "stdin to -", "stdin, default output"])
def test_decompress_to_stdout_in_a_fresh_process(
    coded: tuple[Path, Path, np.ndarray], form: str
) -> None:
    # Regression: Pillow registers its writers lazily, so a fresh process did not know PNG
    # and every stdout decode ended "unknown image format ''" (exit 6).
    lic, weights, ref = coded
    args = {
        "file to -": ([str(lic), "-o", "-"], None),
        "stdin to -": (["-", "-o", "-"], lic.read_bytes()),
        "stdin, default output": (["-"], lic.read_bytes()),
    }[form]
    r = _licodec(
        "decompress",
        *args[0],
        "--weights",
        str(weights),
        "--threads",
        "1",
        "--quiet",
        stdin=args[1],
    )
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.stdout))), ref)


def test_compress_refuses_an_image_extension_and_decompress_a_lic_one(
    coded: tuple[Path, Path, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # (in-process: nothing here depends on process state)
    lic, weights, ref = coded
    src = tmp_path / "a.png"
    Image.fromarray(ref).save(src)
    rc = main(
        ["compress", str(src), "-o", str(tmp_path / "a.webp"), "--weights", str(weights), "--quiet"]
    )
    err = capsys.readouterr().err.strip()
    assert rc == EXIT_OUTPUT and len(err.splitlines()) == 1, err
    assert "compress writes .lic files" in err and "decompress" in err
    rc = main(
        [
            "decompress",
            str(lic),
            "-o",
            str(tmp_path / "b.lic"),
            "--weights",
            str(weights),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == EXIT_OUTPUT and "unknown image format '.lic'" in err, err
    # Each decompress extension picks its format
    for ext, fmt in ((".webp", "WEBP"), (".bmp", "BMP"), (".tif", "TIFF")):
        assert (
            main(
                [
                    "decompress",
                    str(lic),
                    "-o",
                    str(tmp_path / f"c{ext}"),
                    "--weights",
                    str(weights),
                    "--quiet",
                ]
            )
            == 0
        )
        with Image.open(tmp_path / f"c{ext}") as im:
            assert im.format == fmt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "c.bmp", "c.tif", "c.webp"]


def test_quality_out_of_range_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["compress", str(tmp_path / "x.png"), "--quality", "175"])
    assert (
        exc.value.code == 2 and "expected a quality in 0..100, got 175" in capsys.readouterr().err
    )
