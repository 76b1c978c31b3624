"""Training runs on CPU with tiny models and generated images.

Covers the issue's must-holds: the loss falls; exported weights compress and
decompress; a killed run resumes to parameters identical to an uninterrupted one;
two-process DDP (gloo) writes one checkpoint; MS-SSIM training runs; NaN stops a
run and keeps the last good checkpoint.
"""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("lightning")

from licodec.train.config import TrainConfig
from licodec.train.trainer import TrainError, run_training

MODEL = "wacnn-tiny"  # the fastest tiny config on CPU
REPO = Path(__file__).resolve().parents[1]


def _make_images(folder: Path, n: int, seed: int = 0) -> None:
    """Smooth colour fields with edges: learnable, unlike noise."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        h, w = 80 + 8 * (i % 3), 96
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        f = rng.uniform(0.03, 0.15, 3)
        img = np.stack(
            [
                128 + 100 * np.sin(xx * f[0] + i),
                128 + 100 * np.cos(yy * f[1] - i),
                np.where((xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (10 + 2 * i) ** 2, 220, 40)
                + 20 * np.sin((xx + yy) * f[2]),
            ],
            -1,
        )
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{i:02d}.png")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train_data")
    _make_images(root / "train", 10)
    (root / "train" / "corrupt.png").write_bytes(b"\x89PNG broken")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "train" / "tiny.png")
    _make_images(root / "val", 2, seed=9)
    return root


def _cfg(data: Path, out: Path, **kw) -> TrainConfig:
    base = {
        "model": MODEL,
        "data": str(data / "train"),
        "out": str(out),
        "crop": 64,
        "batch_size": 4,
        "steps": 10,
        "lr": 1e-3,
        "schedule": "constant",
        "log_every": 1,
        "ckpt_every": 5,
        "val_every": 1000,
        "progress": "none",
        "threads": 1,
        "seed": 0,
    }
    base.update(kw)
    return TrainConfig(**base)


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "logs" / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_loss_falls_and_exported_weights_round_trip(data, tmp_path):
    from licodec.zoo.weights import load_weights

    run = tmp_path / "run"
    result = run_training(_cfg(data, run, steps=40, val=str(data / "val"), val_every=40))
    assert result.step == 40
    losses = [float(r["loss"]) for r in _rows(run) if r.get("loss")]
    assert len(losses) == 40
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.6 * first, (first, last)
    for name in (
        "config.yaml",
        "data_index.json",
        "checkpoints/last.ckpt",
        "model.safetensors",
        "result.json",
    ):
        assert (run / name).exists(), name
    assert _state(run / "checkpoints" / "last.ckpt")["global_step"] == 40

    model, meta = load_weights(run / "model.safetensors")
    assert meta["arch"] == MODEL and meta["steps"] == 40 and meta["quality"] == 3
    assert meta["lambda"] == 0.0067 and meta["metric"] == "mse"
    assert "10 images" in meta["data"] and "1 unreadable" in meta["data"]
    # the exported weights code the validation images to the bitstreams validation measured
    bpps, psnrs = [], []
    for path in sorted((data / "val").glob("*.png")):
        img = np.asarray(Image.open(path).convert("RGB"))
        x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            enc = model.compress(x)
            dec = model.decompress(enc["strings"], enc["shape"], enc["size"])
        assert dec["x_hat"].shape == x.shape
        nbytes = sum(len(s) for group in enc["strings"] for s in group)
        bpps.append(nbytes * 8 / (x.shape[2] * x.shape[3]))
        mse = torch.mean((torch.round(dec["x_hat"].clamp(0, 1) * 255) / 255 - x) ** 2)
        psnrs.append(10 * math.log10(1 / float(mse)))
    assert np.mean(bpps) == pytest.approx(meta["val"]["bpp"], abs=1e-6)
    assert np.mean(psnrs) == pytest.approx(meta["val"]["psnr"], abs=1e-4)


def test_resume_after_crash_is_exact(data, tmp_path):
    """Crash at step 7 with checkpoints every 3; resuming reaches step 10 with the same
    parameters and optimizer state as an uninterrupted run (accumulation 2, step lr)."""
    import lightning as L

    kw = {
        "steps": 10,
        "ckpt_every": 3,
        "accumulate": 2,
        "schedule": "step",
        "milestones": [6],
        "batch_size": 2,
        "log_every": 2,
    }

    class Crashed(Exception):
        pass

    class Crash(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 7:
                raise Crashed

    straight = tmp_path / "straight"
    run_training(_cfg(data, straight, **kw))
    crashed = tmp_path / "crashed"
    with pytest.raises(Crashed):
        run_training(_cfg(data, crashed, **kw), extra_callbacks=[Crash()])
    assert _state(crashed / "checkpoints" / "last.ckpt")["global_step"] == 6
    run_training(_cfg(data, crashed, **kw), resume=True)

    a = _state(straight / "checkpoints" / "last.ckpt")
    b = _state(crashed / "checkpoints" / "last.ckpt")
    assert a["global_step"] == b["global_step"] == 10
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    for oa, ob in zip(a["optimizer_states"], b["optimizer_states"]):
        assert oa["param_groups"][0]["lr"] == ob["param_groups"][0]["lr"]
        for k, st in oa["state"].items():
            assert torch.equal(st["exp_avg"], ob["state"][k]["exp_avg"])
            assert torch.equal(st["exp_avg_sq"], ob["state"][k]["exp_avg_sq"])
    assert a["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(1e-4)
    # the log keeps one row per logged step, none duplicated by the replayed steps
    steps = [int(r["step"]) for r in _rows(crashed) if r.get("loss")]
    assert steps == [2, 4, 6, 8, 10]


def test_cli_run_refuses_overwrite_and_resumes_longer(data, tmp_path):
    from licodec.cli.main import main

    run = tmp_path / "cli"
    argv = [
        "train",
        "--model",
        MODEL,
        "--quality",
        "1",
        "--data",
        str(data / "train"),
        "--out",
        str(run),
        "--crop",
        "64",
        "--batch-size",
        "2",
        "--steps",
        "3",
        "--progress",
        "none",
        "--threads",
        "1",
        "--set",
        "ckpt_every=2",
    ]
    assert main(argv) == 0
    assert main(argv) == 6  # OutputError: the run exists
    assert main(["train", "--resume", str(run), "--crop", "32"]) == 3  # not changeable
    assert main(["train", "--resume", str(run), "--steps", "5", "--progress", "none"]) == 0
    assert _state(run / "checkpoints" / "last.ckpt")["global_step"] == 5
    from licodec.zoo.weights import read_config

    meta = read_config(run / "model.safetensors")
    assert meta["steps"] == 5 and meta["lambda"] == 0.0018


def test_nan_stops_and_keeps_last_good_checkpoint(data, tmp_path):
    import lightning as L

    class Poison(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if trainer.global_step == 4:
                with torch.no_grad():
                    next(module.model.g_s.parameters()).fill_(float("nan"))

    run = tmp_path / "nan"
    with pytest.raises(TrainError, match="NaN or infinite between steps 4 and 5"):
        run_training(_cfg(data, run, steps=8, ckpt_every=3), extra_callbacks=[Poison()])
    ckpt = _state(run / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 3
    assert all(
        torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point()
    )
    assert not (run / "model.safetensors").exists()


def test_ms_ssim_training_runs(data, tmp_path):
    run = tmp_path / "msssim"
    result = run_training(
        _cfg(data, run, metric="ms-ssim", steps=6, quality=2, val=str(data / "val"), val_every=6)
    )
    rows = [r for r in _rows(run) if r.get("loss")]
    assert len(rows) == 6
    for r in rows:
        ms = float(r["ms_ssim"])
        assert 0 < ms <= 1
        # λ·(1 − MS-SSIM) + bpp, λ = 4.58 at quality 2
        assert float(r["loss"]) == pytest.approx(4.58 * (1 - ms) + float(r["bpp"]), rel=1e-4)
    assert "val_bpp" in result.val
    text = (run / "config.yaml").read_text()
    assert "ms_ssim_window: 3" in text  # 64-px crops: reduced window, said explicitly


def test_ms_ssim_window_rule():
    from licodec.train.losses import ms_ssim_window

    assert ms_ssim_window(256) == 11 and ms_ssim_window(161) == 11
    assert ms_ssim_window(160) == 9 and ms_ssim_window(64) == 3 and ms_ssim_window(33) == 3
    with pytest.raises(ValueError):
        ms_ssim_window(32)


def test_init_loads_other_weights(data, tmp_path):
    import lightning as L

    src = tmp_path / "src"
    run_training(_cfg(data, src, steps=2))
    seen = {}

    class Grab(L.Callback):
        def on_train_start(self, trainer, module):
            seen.update({k: v.clone() for k, v in module.model.state_dict().items()})

    run_training(
        _cfg(data, tmp_path / "ft", steps=1, quality=1, init=str(src / "model.safetensors")),
        extra_callbacks=[Grab()],
    )
    from licodec.zoo.weights import load_weights

    ref, _ = load_weights(src / "model.safetensors")
    for k, v in ref.state_dict().items():
        if "quantized_cdf" in k or "_offset" in k or "cdf_length" in k:
            continue
        assert torch.equal(seen[k], v), k


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "licodec.cli.main", "train", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONWARNINGS"] = "ignore"
    for k in ("LOCAL_RANK", "NODE_RANK", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return env


@pytest.mark.slow
def test_two_process_ddp_on_cpu(data, tmp_path):
    run = tmp_path / "ddp"
    proc = subprocess.run(
        _cli(
            "--model",
            MODEL,
            "--data",
            str(data / "train"),
            "--out",
            str(run),
            "--crop",
            "64",
            "--batch-size",
            "2",
            "--steps",
            "3",
            "--accelerator",
            "cpu",
            "--devices",
            "2",
            "--strategy",
            "ddp",
            "--threads",
            "1",
            "--progress",
            "log",
            "--set",
            "log_every=1",
            "--set",
            "ckpt_every=100",
        ),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["last.ckpt"]
    state = _state(run / "checkpoints" / "last.ckpt")
    assert state["global_step"] == 3
    assert state["licodec"]["world_size"] == 2
    assert state["licodec"]["stream_position"] == 3 * 2 * 2  # steps × batch × ranks
    assert (run / "model.safetensors").exists()
    assert proc.stdout.count("step 3/3") == 1  # only rank 0 reports


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(data, tmp_path):
    """A real SIGKILL mid-run: the resumed run equals an uninterrupted one at step 12."""
    args = [
        "--model",
        MODEL,
        "--data",
        str(data / "train"),
        "--crop",
        "64",
        "--batch-size",
        "2",
        "--threads",
        "1",
        "--progress",
        "none",
        "--lr",
        "1e-3",
        "--schedule",
        "constant",
        "--set",
        "ckpt_every=2",
        "--set",
        "export=false",
    ]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _cli(*args, "--out", str(killed), "--steps", "100000"),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    ckpt = killed / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while time.time() < deadline:
        if ckpt.exists() and _state(ckpt)["global_step"] >= 4:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped = _state(ckpt)["global_step"]
    assert 4 <= stopped < 12
    resumed = subprocess.run(
        _cli("--resume", str(killed), "--steps", "12"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    run_training(
        _cfg(data, tmp_path / "straight", steps=12, batch_size=2, ckpt_every=2, export=False)
    )
    a = _state(tmp_path / "straight" / "checkpoints" / "last.ckpt")["state_dict"]
    b = _state(ckpt)["state_dict"]
    for k, v in a.items():
        assert torch.equal(v, b[k]), k
