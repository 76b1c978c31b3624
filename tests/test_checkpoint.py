"""Authors' checkpoint import, our weights format, and their error messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import smooth_image

from licodec.cli.main import main
from licodec.errors import InputError, ModelError
from licodec.models import create_model
from licodec.zoo.checkpoint import load_authors_checkpoint, normalize_state_dict
from licodec.zoo.weights import load_weights, read_config, save_weights, weights_digest


def _authors_layout(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our keys as an old training script saved them: DataParallel, old EB names."""
    out = {}
    for k, v in sd.items():
        for new, old in (("matrices.", "_matrix"), ("biases.", "_bias"), ("factors.", "_factor")):
            k = k.replace(f"entropy_bottleneck.{new}", f"entropy_bottleneck.{old}")
        out[f"module.{k}"] = v.clone()
    return out


@pytest.fixture(scope="module")
def trained_like() -> torch.nn.Module:
    torch.manual_seed(3)
    model = create_model("stf-tiny")
    with torch.no_grad():  # move the quantiles away from their init, like a trained model
        model.entropy_bottleneck.quantiles.add_(
            torch.randn_like(model.entropy_bottleneck.quantiles)
        )
    model.eval().update(force=True)
    return model


def test_authors_layout_loads_strictly_and_reproduces_outputs(
    tmp_path: Path, trained_like: torch.nn.Module
) -> None:
    sd = _authors_layout(trained_like.state_dict())
    sd["module.h_s.0.weight"] = torch.zeros(3)  # stray key some STF files carry
    ckpt = {"epoch": 7, "state_dict": sd, "loss": torch.tensor(1.0), "optimizer": {"state": {}}}
    path = tmp_path / "authors.pth.tar"
    torch.save(ckpt, path)
    model = load_authors_checkpoint(path, "stf-tiny")
    x = smooth_image(64, 96)
    with torch.no_grad():
        assert torch.equal(model(x)["x_hat"], trained_like(x)["x_hat"])
    assert model.compress(x)["strings"] == trained_like.compress(x)["strings"]
    # The checkpoint's own coder tables are kept, not rebuilt.
    sd["module.gaussian_conditional._quantized_cdf"][0, 1] += 1
    torch.save(ckpt, path)
    kept = load_authors_checkpoint(path, "stf-tiny").gaussian_conditional._quantized_cdf
    assert torch.equal(kept, sd["module.gaussian_conditional._quantized_cdf"])


def test_the_stray_h_s_filter_belongs_to_the_stf_repository_families() -> None:
    sd = {"h_s.0.weight": torch.zeros(1), "g_a.0.weight": torch.zeros(1)}
    assert sorted(normalize_state_dict(sd, create_model("wacnn-tiny"))) == ["g_a.0.weight"]
    assert sorted(normalize_state_dict(sd, create_model("tcm-tiny"))) == sorted(sd)  # kept:
    # the TCM authors' loader drops nothing, so a strict load reports such a key


def test_even_older_eb_names_are_renamed() -> None:
    sd = {"entropy_bottleneck._biases.3": torch.zeros(1), "module.g_a.0.weight": torch.zeros(1)}
    assert sorted(normalize_state_dict(sd)) == ["entropy_bottleneck.biases.3", "g_a.0.weight"]


def test_wrong_shape_names_the_key(tmp_path: Path, trained_like: torch.nn.Module) -> None:
    sd = dict(trained_like.state_dict())
    sd["h_a.2.weight"] = torch.zeros(1, 2, 3, 3)
    path = tmp_path / "bad.pth.tar"
    torch.save({"state_dict": sd}, path)
    with pytest.raises(ModelError, match=r"'h_a\.2\.weight' has shape \[1, 2, 3, 3\]"):
        load_authors_checkpoint(path, "stf-tiny")


def test_wrong_architecture_is_reported(tmp_path: Path, trained_like: torch.nn.Module) -> None:
    path = tmp_path / "stf.pth.tar"
    torch.save({"state_dict": trained_like.state_dict()}, path)
    with pytest.raises(ModelError, match="does not fit wacnn-tiny: .*missing keys"):
        load_authors_checkpoint(path, "wacnn-tiny")


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("echo pwned",))


def test_arbitrary_pickles_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": _Evil()}, path)
    with pytest.raises(InputError, match="weights only"):
        load_authors_checkpoint(path, "stf-tiny")


def test_weights_round_trip_keeps_config_and_bitstream(
    tmp_path: Path, trained_like: torch.nn.Module
) -> None:
    path = save_weights(
        trained_like, tmp_path / "w.safetensors", {"lambda": 0.013, "metric": "mse"}
    )
    config = read_config(path)
    assert config["arch"] == "stf-tiny" and config["lambda"] == 0.013
    assert config["kwargs"]["embed_dim"] == 8
    model, meta = load_weights(path)
    assert meta["digest"] == weights_digest(trained_like).hex() == weights_digest(model).hex()
    x = smooth_image(50, 70)
    assert model.compress(x)["strings"] == trained_like.compress(x)["strings"]
    # The coder tables are stored and used as they are: a model whose tables were built
    # differently (here: altered) hands its own tables on, and no load rebuilds them.
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        stored = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)
    for key in (
        "entropy_bottleneck._quantized_cdf",
        "gaussian_conditional._quantized_cdf",
        "gaussian_conditional.scale_table",
        "gaussian_conditional._offset",
    ):
        assert torch.equal(stored[key], trained_like.state_dict()[key]), key
    odd = create_model("stf-tiny")
    odd.load_state_dict(trained_like.state_dict())
    odd.eval()
    cdf = odd.entropy_bottleneck._quantized_cdf
    cdf[0, 1] += 1  # one CDF entry moved by a unit: still a valid table
    other = save_weights(odd, tmp_path / "odd.safetensors")
    loaded, _ = load_weights(other)
    assert torch.equal(loaded.entropy_bottleneck._quantized_cdf, cdf)
    assert weights_digest(loaded) == weights_digest(trained_like)  # tables are not digested


def test_weights_without_tables_get_them_built(
    tmp_path: Path, trained_like: torch.nn.Module
) -> None:
    """Files of licodec 0.1 (the shipped wacnn-lite versions) stored no tables."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = save_weights(trained_like, tmp_path / "w.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        kept = {
            k: f.get_tensor(k)
            for k in f.keys()  # noqa: SIM118
            if k.rsplit(".", 1)[-1]
            not in ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")
        }
    save_file(kept, str(path), metadata=meta)
    model, _ = load_weights(path)
    for key, value in trained_like.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    # some tables but not all: refused
    with safe_open(str(save_weights(trained_like, tmp_path / "v.safetensors")), "pt") as f:
        meta = f.metadata()
        part = {
            k: f.get_tensor(k)
            for k in f.keys()  # noqa: SIM118
            if not k.endswith("scale_table")
        }
    save_file(part, str(tmp_path / "v.safetensors"), metadata=meta)
    with pytest.raises(ModelError, match="incomplete coder tables"):
        load_weights(tmp_path / "v.safetensors")


def test_tampered_weights_are_detected(tmp_path: Path, trained_like: torch.nn.Module) -> None:
    from safetensors.torch import load_file, save_file

    path = save_weights(trained_like, tmp_path / "w.safetensors")
    tensors = load_file(str(path))
    tensors["h_a.0.bias"] = tensors["h_a.0.bias"] + 1
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(ModelError, match="digest"):
        load_weights(path)


def test_cli_import_checkpoint(tmp_path: Path, trained_like: torch.nn.Module, capsys) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "a.pth.tar"
    torch.save({"state_dict": _authors_layout(trained_like.state_dict())}, src)
    out = tmp_path / "a.safetensors"
    args = ["import-checkpoint", "--arch", "stf-tiny", "--lambda", "0.0483", str(src), str(out)]
    assert main(args) == 0
    assert read_config(out)["lambda"] == 0.0483
    assert main(args) == 6  # refuses to overwrite
    assert "exists" in capsys.readouterr().err
    assert (
        main(["import-checkpoint", "--arch", "stf-tiny", str(tmp_path / "nope"), str(out), "-f"])
        == 3
    )


def test_cli_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "junk.pth.tar"
    bad.write_bytes(b"not a checkpoint")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "licodec.cli.main",
            "import-checkpoint",
            "--arch",
            "stf",
            str(bad),
            str(tmp_path / "o"),
        ],
        capture_output=True,
        check=False,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent / "src")},
    )
    assert proc.returncode == 3
    lines = [
        ln
        for ln in proc.stderr.splitlines()
        if ln.strip() and "Warning" not in ln and "warnings.warn" not in ln
    ]
    assert len(lines) == 1 and lines[0].startswith("licodec: error: cannot read")
    assert not (tmp_path / "o").exists()
