"""``licodec train``: train a model with the papers' recipes, on one CPU or many GPUs."""

from __future__ import annotations

import argparse
from typing import Any

EPILOG = """\
Settings are resolved as: recipe preset < --config FILE.yaml < flags < --set key=value.
Every setting of RUN_DIR/config.yaml can be given with --set (e.g. --set schedule=cosine
--set warmup=500 --set milestones=[0.8,0.95] --set hflip=true).

examples:
  licodec train --model wacnn-lite --data ../shared/data/train/bsds500 \\
      --out runs/wacnn-lite --steps 100000          # 6 qualities in one model
  licodec train --resume runs/wacnn-lite --steps 200000 --lr 3e-5
  licodec train --model tcm-s --quality 1 --data DIR --init runs/tcm-s-q6/model.safetensors
  torchrun --nproc_per_node 4 -m licodec.cli.main train --model stf --quality 3 \\
      --data DIR --devices 4 --strategy ddp --precision bf16-mixed
"""

# flag dest -> config key
_FLAG_KEYS = {
    "model": "model",
    "quality": "quality",
    "data": "data",
    "val": "val",
    "out": "out",
    "metric": "metric",
    "lmbda": "lmbda",
    "steps": "steps",
    "batch_size": "batch_size",
    "crop": "crop",
    "lr": "lr",
    "schedule": "schedule",
    "workers": "workers",
    "devices": "devices",
    "num_nodes": "num_nodes",
    "strategy": "strategy",
    "precision": "precision",
    "accumulate": "accumulate",
    "accelerator": "accelerator",
    "ckpt_every": "ckpt_every",
    "log_every": "log_every",
    "val_every": "val_every",
    "val_images": "val_images",
    "seed": "seed",
    "threads": "threads",
    "progress": "progress",
    "init": "init",
}


def register(subparsers: Any) -> None:
    from licodec.cli.support import int_range, non_negative_int, positive_float, positive_int

    p = subparsers.add_parser(
        "train",
        help="train a model (rate-distortion, MSE or MS-SSIM)",
        description="Train a learned codec with the papers' recipes; resumable, from one "
        "CPU to multi-node GPU jobs (PyTorch Lightning, DDP).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("what to train")
    g.add_argument("--model", "-m", help="registered model name (see `licodec zoo`)")
    g.add_argument(
        "--quality", "-q", type=int_range(1, 6), help="quality 1..6: picks λ from the recipe"
    )
    g.add_argument("--metric", choices=("mse", "ms-ssim"), help="distortion (default mse)")
    g.add_argument("--lambda", dest="lmbda", type=positive_float, help="override λ")
    g.add_argument(
        "--init",
        metavar="WEIGHTS",
        help="start from these weights (.safetensors, trainer .ckpt or run dir)",
    )
    g = p.add_argument_group("data and output")
    g.add_argument("--data", metavar="DIR", help="folder tree of training images")
    g.add_argument("--val", metavar="DIR", help="held-out images for validation (real bpp)")
    g.add_argument(
        "--val-images", type=positive_int, metavar="N", help="use the first N (default 4)"
    )
    g.add_argument(
        "--out", "-o", metavar="RUN_DIR", help="run directory (default runs/MODEL-METRIC-qQ)"
    )
    g.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    g.add_argument(
        "--auto-resume",
        action="store_true",
        help="continue the run in --out if it exists, else start it (for job "
        "scripts that may run again: SLURM requeue, torchrun restarts)",
    )
    g.add_argument("--config", metavar="FILE", help="YAML file of settings")
    g.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any setting (repeatable)",
    )
    g.add_argument(
        "--print-config", action="store_true", help="print the resolved settings and exit"
    )
    g = p.add_argument_group("optimisation")
    g.add_argument("--steps", type=positive_int, help="optimizer steps in total")
    g.add_argument("--batch-size", "-b", type=positive_int, help="crops per device and step")
    g.add_argument("--crop", type=positive_int, help="random crop size (default 256)")
    g.add_argument("--lr", type=positive_float, help="main learning rate (default 1e-4)")
    g.add_argument("--schedule", choices=("step", "plateau", "cosine", "constant"))
    g.add_argument("--accumulate", type=positive_int, help="gradient accumulation (micro-batches)")
    g.add_argument("--seed", type=non_negative_int)
    g = p.add_argument_group("hardware and scale-out")
    g.add_argument("--accelerator", choices=("auto", "cpu", "gpu"))
    g.add_argument("--devices", help="auto, a count, or a list like 0,1")
    g.add_argument("--num-nodes", type=positive_int)
    g.add_argument("--strategy", help="auto, ddp, ddp_spawn (any Lightning strategy name)")
    g.add_argument("--precision", help="32-true, bf16-mixed or 16-mixed (GPU)")
    g.add_argument("--workers", type=non_negative_int, help="data-loader worker processes")
    g.add_argument("--threads", type=positive_int, help="torch CPU threads per process")
    g = p.add_argument_group("logging and checkpoints")
    g.add_argument("--ckpt-every", type=positive_int, metavar="N", help="checkpoint every N steps")
    g.add_argument("--log-every", type=positive_int, metavar="N", help="log every N steps")
    g.add_argument("--val-every", type=positive_int, metavar="N", help="validate every N steps")
    g.add_argument("--progress", choices=("auto", "bar", "log", "none"))
    p.set_defaults(func=run)


def resolve(args: argparse.Namespace) -> tuple[Any, bool]:
    """The TrainConfig for ``args`` and whether this is a resume."""
    from pathlib import Path

    from licodec.errors import InputError
    from licodec.train.config import load_yaml, resolve_config

    flags = {key: getattr(args, dest, None) for dest, key in _FLAG_KEYS.items()}
    if args.resume:
        run_dir = Path(args.resume)
        saved = run_dir / "config.yaml"
        if not saved.exists():
            raise InputError(f"{run_dir} is not a training run (no config.yaml)")
        if args.out and Path(args.out).resolve() != run_dir.resolve():
            raise InputError("--out and --resume name different run directories")
        flags["out"] = str(run_dir)
        cfg = resolve_config(
            flags=flags, yaml_file=args.config, sets=args.sets, resume_from=load_yaml(saved)
        )
        return cfg, True
    cfg = resolve_config(
        flags=flags,
        yaml_file=args.config,
        sets=args.sets,
        default_out=lambda c: (
            f"runs/{c.model}-{c.metric}" + ("" if c.num_rates else f"-q{c.quality}")
        ),
    )
    if args.auto_resume and (Path(cfg.out) / "config.yaml").exists():
        return resolve_config(
            flags=flags,
            yaml_file=args.config,
            sets=args.sets,
            resume_from=load_yaml(Path(cfg.out) / "config.yaml"),
        ), True
    return cfg, False


def run(args: argparse.Namespace) -> int:
    import os

    # Before torch loads OpenMP: idle threads sleep instead of spinning. On a machine
    # shared with other jobs, spinning threads that wait for a descheduled peer made
    # steps 4-20x slower here (wacnn-lite, 2 threads, 2 busy cores); when the machine
    # is idle the cost is negligible. An explicit setting in the environment wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    cfg, resume = resolve(args)
    if args.print_config:
        import yaml

        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        print(f"# lambda in effect: {cfg.lambdas if cfg.num_rates else cfg.lambda_}")
        return 0
    from licodec.train.trainer import run_training

    result = run_training(cfg, resume=resume)
    if result.is_global_zero:
        line = f"trained {cfg.model} to step {result.step} in {result.seconds / 60:.1f} min"
        if result.val:
            line += f"; validation {result.val['val_bpp']:.4f} bpp, {result.val['val_psnr']:.2f} dB"
        print(line)
        if result.weights:
            print(f"weights: {result.weights}")
        if result.checkpoint:
            print(f"checkpoint: {result.checkpoint}")
    return 0
