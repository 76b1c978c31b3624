"""Shipped-weights lookup and `licodec zoo`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from licodec.cli.main import main
from licodec.errors import ModelError
from licodec.zoo import pretrained
from licodec.zoo.registry import create_model
from licodec.zoo.weights import save_weights


@pytest.fixture
def fake_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    model = create_model("wacnn-tiny").eval()
    model.update(force=True)
    items = []
    for q in (2, 4):
        save_weights(model, tmp_path / f"t{q}.safetensors", {"lambda": 0.01 * q, "quality": q})
        items.append(
            {"name": f"wacnn-tiny-q{q}", "arch": "wacnn-tiny", "quality": q, "file": f"t{q}.safetensors",
             "lambda": 0.01 * q, "default": q == 4, "kodak": {"bpp": 0.1 * q, "psnr": 25.0 + q}}
        )
    (tmp_path / "index.json").write_text(json.dumps({"weights": items}))
    monkeypatch.setattr(pretrained, "_weights_dir", lambda: tmp_path)
    return tmp_path


def test_resolve_default_quality_and_errors(fake_zoo: Path) -> None:
    assert pretrained.resolve(None, None) == fake_zoo / "t4.safetensors"
    assert pretrained.resolve("wacnn-tiny", 2) == fake_zoo / "t2.safetensors"
    with pytest.raises(ModelError, match="quality 3; available: 2, 4"):
        pretrained.resolve("wacnn-tiny", 3)
    with pytest.raises(ModelError, match="no shipped weights for 'stf'"):
        pretrained.resolve("stf", None)


def test_no_weights_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pretrained, "_weights_dir", lambda: tmp_path)
    with pytest.raises(ModelError, match="no pretrained weights are installed"):
        pretrained.resolve(None, None)


def test_cli_zoo_lists_architectures_and_weights(fake_zoo: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    assert "tcm-l" in out and "76.57 M parameters" in out
    assert "wacnn-tiny-q4" in out and "(default)" in out and "0.400 bpp" in out
    assert main(["zoo", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {w["quality"] for w in data["weights"]} == {2, 4}


def test_half_storage_halves_the_file_and_loads_the_same_model(tmp_path: Path) -> None:
    import torch

    from licodec.zoo.weights import load_weights

    torch.manual_seed(0)
    model = create_model("wacnn-tiny").eval()
    full = save_weights(model, tmp_path / "full.safetensors")
    half = save_weights(model, tmp_path / "half.safetensors", half=True)  # rounds `model`
    assert half.stat().st_size < 0.62 * full.stat().st_size
    loaded, meta = load_weights(half)  # the digest check passes: same float32 values
    assert "float16" in meta["storage"]
    model.update(force=True)
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert a.dtype == b.dtype and torch.equal(a, b), k
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        assert torch.equal(model(x)["x_hat"], loaded(x)["x_hat"])
