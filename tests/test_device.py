"""``device=`` / ``--device``: where the model runs (issue 16).

On this machine only the CPU exists: "cpu" and "auto" must code exactly as
before, and "cuda" / "mps" must fail with one line (exit 5 at the command
line) before any model runs; a misspelt device is a usage error (exit 2) in
every command that has the option. The GPU cases run only where CUDA (or MPS)
is available and are skipped elsewhere.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from codec_helpers import one_thread, photo, tiny_model, weights_file  # noqa: F401
from PIL import Image

import licodec
from licodec.cli.main import main
from licodec.codec import device as device_mod
from licodec.codec.api import Codec
from licodec.codec.device import parse_device, resolve_device
from licodec.errors import EXIT_MODEL, EXIT_USAGE, ModelError

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine")
needs_mps = pytest.mark.skipif(not HAS_MPS, reason="no MPS device on this machine")
cpu_only = pytest.mark.skipif(HAS_CUDA or HAS_MPS, reason="this machine has a GPU: auto picks it")

# The five commands with --device, each with the arguments it needs to get that far.
COMMANDS = {
    "compress": ["compress", "x.png"],
    "decompress": ["decompress", "x.lic"],
    "eval": ["eval", "DIR", "-o", "r.json"],
    "compare": ["compare", "x.png", "-o", "fig.png"],
    "bitmap": ["bitmap", "x.png", "-o", "map.png"],
}


@pytest.fixture(scope="module")
def wdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("device")
    weights_file(d, "wacnn-tiny")
    return d


def _weights(wdir: Path) -> str:
    return str(weights_file(wdir, "wacnn-tiny"))


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text, text
    return text


# -- names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("cpu", "cpu"),
        (" CPU ", "cpu"),
        ("cuda", "cuda"),
        ("cuda:0", "cuda:0"),
        ("CUDA:01", "cuda:1"),
        ("mps", "mps"),
        ("auto", "auto"),
        (torch.device("cpu"), "cpu"),
        (torch.device("cuda", 2), "cuda:2"),
    ],
)
def test_device_names_are_canonical(spec: Any, name: str) -> None:
    assert parse_device(spec) == name


@pytest.mark.parametrize("spec", ["tpu", "gpu", "", "cuda:", "cuda:x", "cuda:-1", "cpu:0", "mps:0"])
def test_malformed_names_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="choose cpu, cuda, cuda:N, mps or auto"):
        parse_device(spec)
    with pytest.raises(ModelError, match="unknown device") as info:
        resolve_device(spec)
    _one_line(info.value)


@cpu_only
def test_cpu_and_auto_resolve_to_the_cpu_here() -> None:
    for spec in ("cpu", "auto", torch.device("cpu")):
        assert resolve_device(spec) == torch.device("cpu")


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The choice itself, with what the machine has faked."""
    have = {"cuda": True, "mps": True}
    monkeypatch.setattr(device_mod, "_cuda_problem", lambda index: None if have["cuda"] else "x")
    monkeypatch.setattr(device_mod, "_mps_problem", lambda: None if have["mps"] else "x")
    assert resolve_device("auto") == torch.device("cuda")
    have["cuda"] = False
    assert resolve_device("auto") == torch.device("mps")
    have["mps"] = False
    assert resolve_device("auto") == torch.device("cpu")


def test_cuda_index_is_checked_against_the_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with one CUDA device, faked: cuda:0 is fine, cuda:5 is not."""
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    assert resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(ModelError) as info:
        resolve_device("cuda:5")
    assert _one_line(info.value) == (
        "device cuda:5 cannot be used: this machine has 1 CUDA device (cuda:0); use --device cpu"
    )


# -- the API on the CPU ----------------------------------------------------------------


@pytest.mark.parametrize("spec", ["cpu", "auto", torch.device("cpu")])
def test_cpu_round_trip_is_exact(spec: Any) -> None:
    if spec == "auto" and (HAS_CUDA or HAS_MPS):
        pytest.skip("auto picks this machine's GPU")
    model = tiny_model("wacnn-tiny")
    rgb = photo(40, 56, seed=3)
    codec = Codec(model, 2, device=spec)
    result = codec.encode(rgb, keep_reconstruction=True)
    assert codec.device == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in model.parameters())
    decoded = codec.decode(result.data)
    assert isinstance(decoded, Image.Image) and isinstance(result.data, bytes)
    assert result.reconstruction is not None
    assert np.array_equal(np.asarray(decoded), np.asarray(result.reconstruction))
    # the same file as a codec that never heard of devices
    assert Codec(model, 2).compress(rgb) == result.data


def test_load_model_on_the_cpu(wdir: Path) -> None:
    model = licodec.load_model(weights=_weights(wdir), device="auto" if not HAS_CUDA else "cpu")
    assert not model.training
    assert {p.device.type for p in model.parameters()} == {"cpu"}


# -- devices this machine lacks -----------------------------------------------------------


def _missing_devices() -> list[Any]:
    specs: list[Any] = [pytest.param("tpu", id="tpu")]
    specs.append(pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(HAS_CUDA, reason="CUDA")))
    specs.append(
        pytest.param(
            "cuda:5",
            id="cuda:5",
            marks=pytest.mark.skipif(
                HAS_CUDA and torch.cuda.device_count() > 5, reason="6 CUDA devices"
            ),
        )
    )
    specs.append(pytest.param("mps", id="mps", marks=pytest.mark.skipif(HAS_MPS, reason="MPS")))
    return specs


@pytest.mark.parametrize("spec", _missing_devices())
def test_missing_device_is_a_one_line_model_error(spec: str, wdir: Path) -> None:
    model = copy.deepcopy(tiny_model("wacnn-tiny"))
    rgb = photo(24, 24)
    data = Codec(model, 2).compress(rgb)
    for call in (
        lambda: Codec(model, 2, device=spec).compress(rgb),
        lambda: Codec(model, 2, device=spec).decode(data),
        lambda: Codec(weights=_weights(wdir), device=spec).load(),
        lambda: licodec.compress(rgb, weights=_weights(wdir), device=spec),
        lambda: licodec.decompress(data, model=model, device=spec),
        lambda: licodec.load_model(weights=_weights(wdir), device=spec),
    ):
        with pytest.raises(ModelError) as info:
            call()
        text = _one_line(info.value)
        assert text.startswith(("device ", "unknown device")), text
    assert {p.device.type for p in model.parameters()} == {"cpu"}  # nothing was moved


def test_portable_coding_on_mps_is_refused_before_the_model_runs() -> None:
    """MPS has no float64, which portable files need (faked: the device is only named)."""
    model = tiny_model("wacnn-tiny")
    rgb = photo(24, 24)
    data = Codec(model, 2).compress(rgb)
    codec = Codec(model, 2, device="mps")
    codec._device = torch.device("mps")  # what resolve_device gives on a Mac
    with pytest.raises(ModelError, match="needs float64, which MPS does not support"):
        codec.compress(rgb)
    with pytest.raises(ModelError, match="needs float64, which MPS does not support"):
        codec.decode(data)
    assert {p.device.type for p in model.parameters()} == {"cpu"}


# -- the command line -------------------------------------------------------------------


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("value", ["tpu", "cuda:x"])
def test_malformed_device_is_a_usage_error(
    command: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([*COMMANDS[command], "--device", value])
    err = capsys.readouterr().err
    assert info.value.code == EXIT_USAGE, err
    assert err.startswith(f"usage: licodec {command} ")
    assert err.strip().splitlines()[-1] == (
        f"licodec {command}: error: argument --device: unknown device {value!r}; "
        "choose cpu, cuda, cuda:N, mps or auto"
    )


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")
def test_cli_without_cuda_exits_5_in_one_line(
    tmp_path: Path, wdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "im.png"
    Image.fromarray(photo(40, 48, seed=1)).save(image)
    lic = tmp_path / "im.lic"
    assert (
        main(["compress", str(image), "-o", str(lic), "--weights", _weights(wdir), "--quiet"]) == 0
    )
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(photo(32, 32)).save(images / "a.png")
    w = ["--weights", _weights(wdir)]
    runs = {
        "compress": ["compress", str(image), "-o", str(tmp_path / "out.lic"), *w],
        "decompress": ["decompress", str(lic), "-o", str(tmp_path / "out.png")],
        "eval": ["eval", str(images), "-o", str(tmp_path / "out.json"), *w],
        "compare": ["compare", str(image), "-o", str(tmp_path / "out.png"), "--codecs", "none", *w],
        "bitmap": ["bitmap", str(image), "-o", str(tmp_path / "out.png"), *w],
    }
    capsys.readouterr()
    for command, argv in runs.items():
        rc = main([*argv, "--device", "cuda"])
        err = capsys.readouterr().err
        assert rc == EXIT_MODEL, (command, err)
        assert err.startswith("licodec: error: device cuda cannot be used: "), (command, err)
        assert err.count("\n") == 1 and err.endswith("; use --device cpu\n"), (command, err)
    assert not any((tmp_path / f"out.{ext}").exists() for ext in ("lic", "png", "json"))


@cpu_only
def test_cli_auto_runs_on_the_cpu(
    tmp_path: Path, wdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rgb = photo(40, 48, seed=2)
    image = tmp_path / "im.png"
    Image.fromarray(rgb).save(image)
    w = ["--weights", _weights(wdir)]
    lic, png = tmp_path / "im.lic", tmp_path / "back.png"
    assert main(["compress", str(image), "-o", str(lic), *w, "--device", "auto", "--quiet"]) == 0
    assert main(["decompress", str(lic), "-o", str(png), *w, "--device", "auto", "--quiet"]) == 0
    expected = Codec(weights=_weights(wdir)).encode(rgb, keep_reconstruction=True)
    assert lic.read_bytes() == expected.data
    assert expected.reconstruction is not None
    assert np.array_equal(np.asarray(Image.open(png)), np.asarray(expected.reconstruction))

    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(rgb).save(images / "a.png")
    out = tmp_path / "r.json"
    assert main(["eval", str(images), "-o", str(out), *w, "--device", "auto", "--no-progress"]) == 0
    data = json.loads(out.read_text())
    assert data["meta"]["device"] == "cpu"
    assert data["per_image"]["a.png"]["bytes"] == [len(expected.data)]
    assert (
        main(["bitmap", str(image), "-o", str(tmp_path / "map.png"), *w, "--device", "auto"]) == 0
    )
    assert (
        main(
            [
                "compare",
                str(image),
                "-o",
                str(tmp_path / "cmp.png"),
                "--codecs",
                "none",
                *w,
                "--device",
                "auto",
            ]
        )
        == 0
    )
    capsys.readouterr()


# -- GPUs (skipped without one) --------------------------------------------------------------


@needs_cuda
@pytest.mark.parametrize("portable", [True, False])
def test_cuda_round_trip_is_exact(wdir: Path, portable: bool) -> None:
    rgb = photo(72, 100, seed=4)
    codec = Codec(weights=_weights(wdir), device="cuda", portable=portable)
    result = codec.encode(rgb, keep_reconstruction=True)
    module = codec.load().module
    assert {p.device.type for p in module.parameters()} == {"cuda"}
    if portable:  # the float64 copies of the entropy-parameter networks live there too
        nets = module._nets(True)
        assert {p.device.type for p in nets.h_mean_s.parameters()} == {"cuda"}
        assert {p.dtype for p in nets.h_mean_s.parameters()} == {torch.float64}
    decoded = codec.decode(result.data)
    assert result.reconstruction is not None
    assert np.array_equal(np.asarray(decoded), np.asarray(result.reconstruction))


def _psnr(a: Any, b: Any) -> float:
    mse = float(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


@needs_cuda
def test_portable_files_cross_between_cpu_and_cuda(wdir: Path) -> None:
    """Coded on one device, decoded on the other: the latents are the encoder's (the
    decoder checks their CRC). The pixels differ only by the synthesis transform's float32
    (TF32 on recent NVIDIA GPUs): far from the garbage of a desynchronised stream."""
    rgb = photo(72, 100, seed=5)
    cpu = Codec(weights=_weights(wdir), device="cpu")
    gpu = Codec(weights=_weights(wdir), device="cuda")
    for enc, dec in ((cpu, gpu), (gpu, cpu)):
        result = enc.encode(rgb, keep_reconstruction=True)
        assert result.reconstruction is not None
        assert _psnr(dec.decode(result.data), result.reconstruction) > 40


@needs_cuda
def test_cuda_command_line_and_bitmap(
    tmp_path: Path, wdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from licodec.eval.bitmap import likelihood_map
    from licodec.zoo.weights import load_weights

    rgb = photo(64, 80, seed=6)
    image = tmp_path / "im.png"
    Image.fromarray(rgb).save(image)
    w = ["--weights", _weights(wdir)]
    lic, png = tmp_path / "im.lic", tmp_path / "back.png"
    assert main(["compress", str(image), "-o", str(lic), *w, "--device", "cuda", "--quiet"]) == 0
    assert main(["decompress", str(lic), "-o", str(png), *w, "--device", "cuda", "--quiet"]) == 0
    assert main(["decompress", str(lic), "-o", str(tmp_path / "cpu.png"), *w, "--quiet"]) == 0
    assert _psnr(Image.open(png), Image.open(tmp_path / "cpu.png")) > 40
    model, _ = load_weights(_weights(wdir))
    on_cpu = likelihood_map(model, rgb)
    on_gpu = likelihood_map(model.to("cuda"), rgb)
    assert on_gpu.bpp == pytest.approx(on_cpu.bpp, rel=1e-2)
    capsys.readouterr()


@needs_mps
def test_mps_codes_non_portable_files(wdir: Path) -> None:
    rgb = photo(64, 64, seed=7)
    codec = Codec(weights=_weights(wdir), device="mps", portable=False)
    result = codec.encode(rgb, keep_reconstruction=True)
    assert result.reconstruction is not None
    assert np.array_equal(np.asarray(codec.decode(result.data)), np.asarray(result.reconstruction))
    with pytest.raises(ModelError, match="float64"):
        Codec(weights=_weights(wdir), device="mps").compress(rgb)
