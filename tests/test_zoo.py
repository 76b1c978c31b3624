"""Shipped-weights lookup and `licodec zoo`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from licodec.cli.main import main
from licodec.errors import ModelError
from licodec.models import create_model
from licodec.zoo import pretrained
from licodec.zoo.weights import save_weights


@pytest.fixture
def fake_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    model = create_model("wacnn-tiny").eval()
    model.update(force=True)
    items = []
    for q in (2, 4):
        save_weights(model, tmp_path / f"t{q}.safetensors", {"lambda": 0.01 * q, "quality": q})
        items.append(
            {
                "name": f"wacnn-tiny-q{q}",
                "arch": "wacnn-tiny",
                "quality": q,
                "file": f"t{q}.safetensors",
                "lambda": 0.01 * q,
                "default": q == 4,
                "kodak": {"bpp": 0.1 * q, "psnr": 25.0 + q},
                "steps": 12500 * q,
            }
        )
    (tmp_path / "index.json").write_text(json.dumps({"weights": items}))
    monkeypatch.setattr(pretrained, "_weights_dir", lambda: tmp_path)
    return tmp_path


def test_resolve_default_quality_and_errors(fake_zoo: Path) -> None:
    assert pretrained.resolve(None, None) == fake_zoo / "t4.safetensors"
    assert pretrained.resolve("wacnn-tiny", 2) == fake_zoo / "t2.safetensors"
    with pytest.raises(ModelError, match="quality 3; available: 2, 4"):
        pretrained.resolve("wacnn-tiny", 3)
    with pytest.raises(ModelError, match="no shipped weights for 'stf'") as err:
        pretrained.resolve("stf", None)
    assert "licodec import-checkpoint" in str(err.value) and "--weights FILE" in str(err.value)


def test_compress_help_names_only_ids_with_weights(capsys: pytest.CaptureFixture[str]) -> None:
    """`compress --help` gives examples of --model; each must be an id that ships weights."""
    import re

    with pytest.raises(SystemExit):
        main(["compress", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    examples = re.findall(r"--model NAME .*?e\.g\. ([a-z0-9][a-z0-9.+-]*)", text)
    assert examples, text
    shipped = {e.arch for e in pretrained.entries()} | {e.tag for e in pretrained.entries()}
    assert set(examples) <= shipped, (examples, shipped)


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


def test_cli_zoo_says_which_ids_have_weights_and_how_to_get_the_others(
    fake_zoo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["zoo"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # The architectures are not advertised as `compress --model` targets: most have no weights.
    assert "compress" not in lines[0] and "train" in lines[0]
    marked = [ln.split()[0] for ln in lines if ln.startswith(" *")]
    assert marked == ["*wacnn-tiny"]
    text = "\n".join(lines)
    assert "shipped weights: wacnn-tiny" in text
    assert "licodec import-checkpoint --arch NAME" in text
    assert "--weights" in text
    note = next(ln for ln in lines if "published checkpoints of" in ln)
    for arch in ("stf", "wacnn", "tcm-s", "tcm-m", "tcm-l"):
        assert arch in note
    # Training steps, as the README promises.
    row = next(ln for ln in lines if ln.strip().startswith("wacnn-tiny-q4"))
    assert "50,000 steps" in row and "(default)" in row


def test_half_storage_halves_the_file_and_loads_the_same_model(tmp_path: Path) -> None:
    import torch

    from licodec.zoo.weights import load_weights

    torch.manual_seed(0)
    model = create_model("wacnn-tiny").eval()
    full = save_weights(model, tmp_path / "full.safetensors")
    half = save_weights(model, tmp_path / "half.safetensors", half=True)  # rounds `model`
    # the coder tables (int32, the same in both) aside, the file is about half as large
    tables = sum(
        v.numel() * v.element_size()
        for k, v in model.state_dict().items()
        if k.rsplit(".", 1)[-1] in ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")
    )
    assert tables > 0
    assert half.stat().st_size - tables < 0.62 * (full.stat().st_size - tables)
    loaded, meta = load_weights(half)  # the digest check passes: same float32 values
    assert "float16" in meta["storage"]
    model.update(force=True)
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert a.dtype == b.dtype and torch.equal(a, b), k
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        assert torch.equal(model(x)["x_hat"], loaded(x)["x_hat"])


@pytest.fixture
def versioned_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A zoo with two released versions of wacnn-tiny (v2 the newest and the default)."""
    import torch

    for version in (1, 2):
        torch.manual_seed(version)
        model = create_model("wacnn-tiny").eval()
        save_weights(model, tmp_path / f"wt-v{version}.safetensors", {"quality": 3})
    from licodec.zoo.weights import read_config

    items = [
        {
            "name": f"wacnn-tiny-v{v}-q3",
            "arch": "wacnn-tiny",
            "version": v,
            "quality": 3,
            "file": f"wt-v{v}.safetensors",
            "default": v == 2,
            "digest": read_config(tmp_path / f"wt-v{v}.safetensors")["digest"],
        }
        for v in (1, 2)
    ]
    (tmp_path / "index.json").write_text(json.dumps({"weights": items}))
    monkeypatch.setattr(pretrained, "_weights_dir", lambda: tmp_path)
    return tmp_path


def test_files_of_every_released_version_keep_decoding(versioned_zoo: Path) -> None:
    # Released weights are frozen: the decoder finds the weights by the file's digest.
    import numpy as np
    from codec_helpers import photo

    from licodec.codec.api import Codec
    from licodec.codec.container import parse

    img = photo(16, 24)
    new = Codec().compress(img)  # the newest version is the default
    old = Codec("wacnn-tiny-v1").compress(img)  # an older version by its tag
    assert pretrained.resolve("wacnn-tiny", None) == versioned_zoo / "wt-v2.safetensors"
    assert parse(new).weights_digest != parse(old).weights_digest
    decoder = Codec()
    assert np.asarray(decoder.decompress(new)).shape == (16, 24, 3)
    assert np.asarray(decoder.decompress(old)).shape == (16, 24, 3)
    # Retiring v1 (its file leaves the package) names the commit and the --weights to pass
    index = json.loads((versioned_zoo / "index.json").read_text())
    v1 = index["weights"].pop(0)
    index["retired"] = [
        {
            "arch": "wacnn-tiny",
            "version": 1,
            "digest": v1["digest"],
            "steps": 1234,
            "file": v1["file"],
            "commit": "abc1234",
        }
    ]
    (versioned_zoo / "index.json").write_text(json.dumps(index))
    keep = versioned_zoo / "kept-v1.safetensors"
    (versioned_zoo / v1["file"]).rename(keep)
    with pytest.raises(ModelError) as info:
        Codec().decompress(old)
    msg = str(info.value)
    assert "wacnn-tiny v1 (1,234 training steps)" in msg and "no longer ships" in msg
    assert "git show abc1234:src/licodec/zoo/weights/wt-v1.safetensors" in msg
    assert "--weights wacnn-tiny-v1.safetensors" in msg
    assert np.asarray(Codec(weights=keep).decompress(old)).shape == (16, 24, 3)
    # The newest file with the old weights: the error says which shipped version it needs
    with pytest.raises(ModelError, match="weights are the shipped wacnn-tiny-v2 .omit --weights"):
        Codec(weights=keep).decompress(new)
    with pytest.raises(ModelError, match="which licodec does not ship"):
        c = parse(new)
        c.weights_digest = bytes(8)
        from licodec.codec.container import serialise

        Codec().decompress(serialise(c))
