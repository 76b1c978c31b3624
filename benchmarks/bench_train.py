"""Training throughput of `licodec train`: images/s per model on this machine.

For each model it times (median over --steps optimizer steps, after --warmup):
  trainer  the real trainer (Lightning loop, data loader, metrics, both optimizers)
  raw      the same computation in a bare PyTorch loop (forward, backward, clip, Adam,
           aux step), to show what the trainer adds
Defaults: the lite models on CPU; on a GPU also the full-size models. Training data are
generated images (or --data DIR). Prints a table and writes JSON to benchmarks/results/.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_train.py
    PYTHONPATH=src .venv/bin/python benchmarks/bench_train.py --models wacnn-lite --batch 8
    PYTHONPATH=src .venv/bin/python benchmarks/bench_train.py --mode raw --interleave \
        --channels-last --threads 2 --steps 7 --warmup 3   # lite models compared fairly
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

LITE = ["wacnn-lite", "stf-lite", "tcm-lite"]
FULL = ["wacnn", "stf", "tcm-s", "tcm-m", "tcm-l"]


def make_images(folder: Path, n: int, size: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        yy, xx = np.mgrid[0:size, 0:size]
        base = np.stack([np.sin(xx / (9 + i)), np.cos(yy / (7 + i)), np.sin((xx + yy) / 13)], -1)
        img = 128 + 90 * base + rng.normal(0, 8, base.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{i:03d}.png")


def raw_stepper(
    name: str, batch: int, crop: int, device: str, precision: str, channels_last: bool = False
) -> Callable[[], float]:
    """One step of the trainer's computation without Lightning (same loss, optimizers,
    clipping) per call; returns its seconds."""
    import torch

    from licodec.models import create_model
    from licodec.train.losses import RateDistortionLoss

    torch.manual_seed(0)
    model = create_model(name).to(device).train()
    main = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    aux = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    opt = torch.optim.Adam(main, lr=1e-4, fused=True)
    aux_opt = torch.optim.Adam(aux, lr=1e-3)
    crit = RateDistortionLoss(0.013)
    x = torch.rand(batch, 3, crop, crop, device=device)
    if channels_last:  # as `--set channels_last=true` does
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    rates = int(getattr(model, "num_rates", 0) or 0)
    if rates:  # variable rate, as the trainer does it: a quality and its λ per image
        from licodec.train.config import TrainConfig

        rate = torch.randint(rates, (batch,))
        lam = torch.tensor(TrainConfig(model=name).lambdas)[rate].to(device)
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device) if precision == "16-mixed" else None

    def step() -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(
            device_type=device.split(":")[0],
            dtype=dtype or torch.float32,
            enabled=dtype is not None,
        ):
            if rates:
                loss = crit(model(x, rate), x, lam)["loss"]
            else:
                loss = crit(model(x), x)["loss"]
        if scaler:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        else:
            loss.backward()
        torch.nn.utils.clip_grad_norm_(main, 1.0)
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
        a = model.aux_loss()
        a.backward()
        aux_opt.step()
        aux_opt.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    return step


def time_interleaved(
    names: list[str],
    batch: int,
    crop: int,
    steps: int,
    warmup: int,
    device: str,
    precision: str,
    channels_last: bool = False,
) -> dict[str, list[float]]:
    """Seconds of ``steps`` raw steps per model after ``warmup`` untimed ones, taken
    round-robin over the models, so that a machine whose speed drifts (other tenants,
    thermal limits) slows every model alike: ratios stay comparable."""
    steppers = {n: raw_stepper(n, batch, crop, device, precision, channels_last) for n in names}
    for _ in range(warmup):
        for step in steppers.values():
            step()
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(steps):
        for n, step in steppers.items():
            times[n].append(step())
    return times


def time_trainer(
    name: str,
    batch: int,
    crop: int,
    steps: int,
    warmup: int,
    data: Path,
    accelerator: str,
    precision: str,
    threads: int | None,
    channels_last: bool = False,
) -> list[float]:
    import lightning as L
    import torch

    from licodec.train.config import TrainConfig
    from licodec.train.trainer import run_training

    stamps: list[float] = []

    class Clock(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.strategy.root_device.type == "cuda":
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(
            model=name,
            data=str(data),
            out=out,
            crop=crop,
            batch_size=batch,
            steps=warmup + steps + 1,
            log_every=10**6,
            ckpt_every=10**6,
            val_every=10**6,
            progress="none",
            export=False,
            accelerator=accelerator,
            precision=precision,
            threads=threads,
            devices="1",
            channels_last=channels_last,
        )
        run_training(cfg, extra_callbacks=[Clock()])
    d = np.diff(stamps)
    return list(d[warmup:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", help="default: lite (CPU) or lite + full (GPU)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per model")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--mode", choices=("both", "trainer", "raw"), default="both")
    ap.add_argument(
        "--interleave",
        action="store_true",
        help="raw steps round-robin over the models (comparable on a noisy machine)",
    )
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--precision", default=None, help="default: 32-true on CPU, bf16-mixed on GPU")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--channels-last",
        action="store_true",
        help="NHWC weights and activations (the trainer's channels_last)",
    )
    ap.add_argument("--data", help="training images (default: generated)")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/...)")
    args = ap.parse_args(argv)

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `licodec train` does
    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = args.precision or ("bf16-mixed" if device == "cuda" else "32-true")
    if args.threads:
        torch.set_num_threads(args.threads)
    models = args.models or (LITE + FULL if device == "cuda" else LITE)
    hw = torch.cuda.get_device_name() if device == "cuda" else (platform.processor() or "cpu")
    print(
        f"device: {device} ({hw}), torch threads {torch.get_num_threads()}, "
        f"precision {precision}, {'NHWC' if args.channels_last else 'NCHW'}, batch {args.batch} × {args.crop}², load {os.getloadavg()[0]:.1f}",
        flush=True,
    )

    rows = []
    interleaved: dict[str, list[float]] = {}
    if args.interleave and args.mode in ("both", "raw"):
        interleaved = time_interleaved(
            models,
            args.batch,
            args.crop,
            args.steps,
            args.warmup,
            device,
            precision,
            args.channels_last,
        )
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "imgs"
        if not args.data:
            make_images(data, 16, max(args.crop + 32, 288))
        for name in models:
            from licodec.models import create_model

            n_params = sum(p.numel() for p in create_model(name).parameters())
            row: dict = {"model": name, "params_m": round(n_params / 1e6, 2)}
            try:
                if args.mode in ("both", "raw"):
                    t = (
                        interleaved.get(name)
                        or time_interleaved(
                            [name],
                            args.batch,
                            args.crop,
                            args.steps,
                            args.warmup,
                            device,
                            precision,
                            args.channels_last,
                        )[name]
                    )
                    row["raw_s_per_step"] = statistics.median(t)
                    row["raw_steps_s"] = [round(x, 4) for x in t]
                if args.mode in ("both", "trainer"):
                    t = time_trainer(
                        name,
                        args.batch,
                        args.crop,
                        args.steps,
                        args.warmup,
                        data,
                        "gpu" if device == "cuda" else "cpu",
                        precision,
                        args.threads,
                        args.channels_last,
                    )
                    row["trainer_s_per_step"] = statistics.median(t)
                    row["trainer_steps_s"] = [round(x, 4) for x in t]
            except torch.OutOfMemoryError:
                row["error"] = "out of memory"
            sec = row.get("trainer_s_per_step", row.get("raw_s_per_step"))
            if sec:
                row["images_per_s"] = args.batch / sec
                row["steps_per_s"] = 1.0 / sec
            rows.append(row)
            print(_fmt(row), flush=True)

    print()
    print(
        f"{'model':12s} {'params':>8s} {'raw s/step':>11s} {'trainer s/step':>15s} "
        f"{'images/s':>9s} {'steps/s':>8s}"
    )
    for r in rows:
        print(_fmt(r))
    result = {
        "benchmark": "train",
        "device": device,
        "hardware": hw,
        "precision": precision,
        "threads": torch.get_num_threads(),
        "channels_last": args.channels_last,
        "batch": args.batch,
        "crop": args.crop,
        "timed_steps": args.steps,
        "interleaved": bool(interleaved),
        "load_average": os.getloadavg()[0],
        "torch": torch.__version__,
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "rows": rows,
    }
    out = (
        Path(args.out)
        if args.out
        else (Path(__file__).resolve().parent / "results" / f"train_{device}.json")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


def _fmt(r: dict) -> str:
    def f(key: str, width: int, fmt: str) -> str:
        v = r.get(key)
        return f"{v:{width}{fmt}}" if isinstance(v, (int, float)) else f"{'-':>{width}s}"

    line = (
        f"{r['model']:12s} {r['params_m']:7.2f}M {f('raw_s_per_step', 11, '.3f')} "
        f"{f('trainer_s_per_step', 15, '.3f')} {f('images_per_s', 9, '.2f')} "
        f"{f('steps_per_s', 8, '.3f')}"
    )
    return line + (f"  ({r['error']})" if "error" in r else "")


if __name__ == "__main__":
    sys.exit(main())
