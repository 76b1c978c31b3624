"""`licodec demo`: the README's main job."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from licodec.cli.demo import test_picture as make_picture
from licodec.cli.main import main
from licodec.models import create_model
from licodec.zoo.weights import save_weights


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = create_model("wacnn-tiny").eval()
    model.update(force=True)
    return save_weights(model, tmp_path_factory.mktemp("w") / "tiny.safetensors", {"quality": 1})


def test_demo_on_generated_picture(weights: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["demo", "--weights", str(weights)]) == 0
    out = capsys.readouterr().out
    m = re.search(r"768x512 with wacnn-tiny, (\d+) bytes, ([\d.]+) bpp, PSNR ([\d.]+) dB", out)
    assert m, out
    assert abs(int(m[1]) * 8 / (768 * 512) - float(m[2])) < 1e-3
    assert 0 < float(m[3]) < 60  # an untrained model: any finite PSNR


def test_demo_on_a_file_writes_the_decoded_image(weights: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "in.png"
    make_picture(100, 70).save(src)
    out = tmp_path / "out.png"
    assert main(["demo", str(src), "--weights", str(weights), "-o", str(out)]) == 0
    assert Image.open(out).size == (100, 70)
    assert np.asarray(Image.open(out)).dtype == np.uint8
    assert "100x70" in capsys.readouterr().out


def test_demo_without_weights_says_how_to_get_them(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from licodec.zoo import pretrained

    monkeypatch.setattr(pretrained, "_weights_dir", lambda: tmp_path)
    assert main(["demo"]) == 5
    assert "no pretrained weights are installed" in capsys.readouterr().err
