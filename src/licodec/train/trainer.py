"""Run a training job: build data, model, Lightning trainer; resume; export the weights.

Layout of a run directory::

    RUN_DIR/config.yaml          resolved settings (read back by --resume)
    RUN_DIR/data_index.json      the training files in stream order (exact resume)
    RUN_DIR/checkpoints/last.ckpt  written atomically every ckpt_every steps and at the end
    RUN_DIR/logs/metrics.csv     train averages every log_every steps, validation rows
    RUN_DIR/logs/tensorboard/    the same for TensorBoard (when installed)
    RUN_DIR/model.safetensors    the exported weights (licodec.zoo.weights format)
    RUN_DIR/result.json          final step, metrics, timings
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from licodec.errors import InputError, LicodecError, ModelError, OutputError
from licodec.train.config import TrainConfig, atomic_write_text, save_yaml

__all__ = [
    "TrainError",
    "TrainResult",
    "build_model",
    "describe_run",
    "export_weights",
    "load_init_weights",
    "run_training",
]


class TrainError(LicodecError):
    """Training stopped (diverged, or the engine failed)."""


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    checkpoint: Path | None
    weights: Path | None
    train: dict[str, float] = field(default_factory=dict)
    val: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    is_global_zero: bool = True


def _is_child_process() -> bool:
    """True in every process but the first of a distributed job: those started by
    Lightning's DDP launcher (they re-run the CLI), by torchrun or by srun."""
    keys = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")
    return any(os.environ.get(k, "0") not in ("", "0") for k in keys)


class _DropInfo(logging.Filter):
    """Keeps warnings and errors only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


# Lightning's rank-zero info lines ("GPU available: ...", "TPU available: ...", "LOCAL_RANK:
# 0 - CUDA_VISIBLE_DEVICES", "`Trainer.fit` stopped", product tips) repeat or contradict
# what our own start and end lines say; its warnings still pass.
_LIGHTNING_INFO_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.pytorch.accelerators.cuda",
)


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silence Lightning's info banners while a run sets up and trains."""
    drop = _DropInfo()
    logs = [logging.getLogger(name) for name in _LIGHTNING_INFO_LOGGERS]
    for log in logs:
        log.addFilter(drop)
    try:
        yield
    finally:
        for log in logs:
            log.removeFilter(drop)


def _say(text: str) -> None:
    if not _is_child_process():
        print(text, flush=True)


# ---------------------------------------------------------------- model
def build_model(cfg: TrainConfig) -> Any:
    from licodec.models import create_model

    try:
        return create_model(cfg.model, **cfg.model_kwargs)
    except KeyError as exc:
        raise ModelError(str(exc.args[0]) if exc.args else str(exc)) from None
    except TypeError as exc:
        raise ModelError(f"bad model_kwargs for {cfg.model}: {exc}") from None


class _InitWeights(NamedTuple):
    state_dict: dict[str, Any]
    arch: str | None
    lmbda: float | None  # a fixed-rate model's λ
    lambdas: list[float] | None  # a variable-rate model's λ per rate


def _read_state_dict(path: Path) -> _InitWeights:
    """A state_dict, and the arch and λ(s) when known, from our weights, a trainer
    checkpoint or a run directory."""
    import torch

    if path.is_dir():
        if (path / "model.safetensors").exists():
            path = path / "model.safetensors"
        elif (path / "checkpoints" / "last.ckpt").exists():
            path = path / "checkpoints" / "last.ckpt"
        else:
            raise ModelError(f"no model.safetensors or checkpoint in {path}")
    if not path.exists():
        raise ModelError(f"weights not found: {path}")
    if path.suffix == ".safetensors":
        from licodec.zoo.weights import load_weights

        model, meta = load_weights(path)
        lmbda, lambdas = meta.get("lambda"), meta.get("lambdas")
        return _InitWeights(
            model.state_dict(),
            getattr(model, "arch", None) or meta.get("arch"),
            float(lmbda) if isinstance(lmbda, (int, float)) else None,
            [float(v) for v in lambdas] if isinstance(lambdas, list) else None,
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"cannot read weights {path}: {exc}".splitlines()[0]) from None
    arch = None
    lmbda = None
    lambdas = None
    if isinstance(ckpt, dict) and "licodec" in ckpt:  # our trainer's checkpoint
        saved = ckpt["licodec"].get("config", {})
        arch = saved.get("model")
        try:
            run_cfg = TrainConfig(
                **{k: v for k, v in saved.items() if k in TrainConfig.__dataclass_fields__}
            )
            if run_cfg.num_rates:
                lambdas = run_cfg.lambdas
            else:
                lmbda = run_cfg.lambda_
        except (TypeError, InputError, KeyError):
            lmbda = lambdas = None
        sd = {k[6:]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    elif isinstance(ckpt, dict) and "state_dict" in ckpt:
        sd = ckpt["state_dict"]
    else:
        sd = ckpt
    if not isinstance(sd, dict):
        raise ModelError(f"{path} holds no state_dict")
    sd = {(k.removeprefix("module.")): v for k, v in sd.items()}
    return _InitWeights(sd, arch, lmbda, lambdas)


def _geometric_mean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def load_init_weights(
    model: Any, path: str, expected_arch: str, lambdas: list[float] | None = None
) -> str:
    """Load weights for fine-tuning (--init); returns a description for the logs.

    Fixed-rate weights may start a variable-rate model: its gains are then
    spread around the λ those weights were trained for (see ``init_rate_gains``).
    Variable-rate weights trained for other λs have their gains moved to the
    new ones (see ``retarget_rates``).
    """
    sd, arch, lmbda, init_lambdas = _read_state_dict(Path(path))
    if arch and arch != expected_arch:
        raise ModelError(f"--init weights are for {arch!r}, but the model is {expected_arch!r}")
    try:
        if getattr(model, "num_rates", 0):
            # Fixed-rate weights of the same architecture are a valid start (gains = 1).
            missing, unexpected = model.load_state_dict(sd, strict=False)
            gains = {"gain_y", "inv_gain_y", "gain_z", "inv_gain_z"}
            if unexpected or set(missing) - gains:
                raise RuntimeError(f"missing {missing[:3]}, unexpected {unexpected[:3]}")
            if missing and lambdas:
                ref = lmbda or _geometric_mean(lambdas)
                model.init_rate_gains(lambdas, ref)
                return f"{path} ({arch or 'unknown arch'}; rate gains spread around λ={ref:g})"
            if not missing and lambdas and init_lambdas and list(init_lambdas) != list(lambdas):
                try:
                    model.retarget_rates(init_lambdas, lambdas)
                except ValueError as exc:
                    raise ModelError(f"--init weights {path}: {exc}") from None
                return (
                    f"{path} ({arch or 'unknown arch'}; rate gains moved from "
                    f"λ={', '.join(f'{v:g}' for v in init_lambdas)})"
                )
        else:
            model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()
        raise ModelError(
            f"--init weights do not fit {expected_arch}: {' '.join(first[:3])[:300]}"
        ) from None
    return f"{path} ({arch or 'unknown arch'})"


def export_weights(model: Any, path: Path, meta: dict[str, Any]) -> Path:
    """update(force=True) and write our weights format (safetensors + config)."""
    from licodec.zoo.weights import save_weights

    model.eval()
    model.update(force=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_weights(model, path, meta=meta)
    return path


# ---------------------------------------------------------------- Lightning glue
def _devices(value: str) -> Any:
    v = str(value).strip()
    if v == "auto":
        return "auto"
    if "," in v:
        return [int(x) for x in v.split(",") if x.strip()]
    try:
        return int(v)
    except ValueError:
        raise InputError(
            f"devices must be auto, a count or a list like 0,1; got {value!r}"
        ) from None


def _strategy(cfg: TrainConfig, devices: Any) -> Any:
    from lightning.pytorch.strategies import DDPStrategy

    multi = (
        cfg.num_nodes > 1
        or (isinstance(devices, int) and devices > 1)
        or (isinstance(devices, list) and len(devices) > 1)
    )
    if cfg.strategy in ("ddp", "ddp_spawn") or (cfg.strategy == "auto" and multi):
        start: Literal["spawn", "popen"] = "spawn" if cfg.strategy == "ddp_spawn" else "popen"
        # every parameter takes part in the main loss (the quantiles are excluded from
        # DDP), so the unused-parameter search is off.
        return DDPStrategy(
            start_method=start, find_unused_parameters=False, gradient_as_bucket_view=True
        )
    return cfg.strategy


def _plugins(checkpoint_io: Any) -> list[Any]:
    plugins = [checkpoint_io]
    from lightning.fabric.plugins.environments import SLURMEnvironment

    if SLURMEnvironment.detect():
        # Lightning's own SLURM requeue saves a checkpoint from a signal handler, at any
        # point of a step; resuming from it would not be exact. Runs continue from the
        # last regular checkpoint instead (job scripts use --auto-resume).
        plugins.append(SLURMEnvironment(auto_requeue=False))
    return plugins


def _make_datamodule(cfg: TrainConfig, index: Any, pin_memory: bool) -> Any:
    import lightning as L
    from torch.utils.data import DataLoader

    from licodec.train.data import CropDataset, StreamSampler, collate_uint8

    class TrainData(L.LightningDataModule):
        """Builds the dataset in each process (after the DDP launch: nothing is pickled)."""

        def __init__(self) -> None:
            super().__init__()
            self.dataset: CropDataset | None = None

        def setup(self, stage: str) -> None:
            if self.dataset is not None:
                return
            if cfg.cache == "yes":
                cache = True
            elif cfg.cache == "no":
                cache = False
            else:
                cache = CropDataset.estimate_bytes(index) <= cfg.cache_limit_mb * 2**20
            self.dataset = CropDataset(index, cfg.crop, seed=cfg.seed, hflip=cfg.hflip, cache=cache)
            self.cached = cache

        def train_dataloader(self) -> DataLoader:
            assert self.dataset is not None and self.trainer is not None
            start = int(getattr(self.trainer.lightning_module, "stream_start", 0))
            sampler = StreamSampler(
                len(self.dataset),
                cfg.seed,
                start=start,
                rank=self.trainer.global_rank,
                world=self.trainer.world_size,
            )
            workers = cfg.workers
            if workers is None:
                workers = 0 if self.cached else min(4, max(1, (os.cpu_count() or 2) - 1))
            return DataLoader(
                self.dataset,
                batch_size=cfg.batch_size,
                sampler=sampler,
                num_workers=workers,
                pin_memory=pin_memory,
                drop_last=True,
                collate_fn=collate_uint8,
                persistent_workers=workers > 0,
                prefetch_factor=4 if workers > 0 else None,
            )

    return TrainData()


def describe_run(cfg: TrainConfig, model: Any, index: Any) -> str:
    n_params = sum(p.numel() for p in model.parameters())
    return (
        f"model {cfg.model} ({n_params / 1e6:.2f} M parameters), quality {cfg.quality}, "
        + (
            f"{cfg.metric} λ={cfg.lambda_:g}\n"
            if not cfg.num_rates
            else f"{cfg.metric}, {cfg.num_rates} rates, λ={', '.join(f'{v:g}' for v in cfg.lambdas)}"
            + (
                f", drawn in proportion {':'.join(f'{v:g}' for v in cfg.rate_weights)}"
                if cfg.rate_weights is not None
                else ""
            )
            + "\n"
        )
        + f"data: {index.describe()}; crops {cfg.crop}px, batch {cfg.batch_size}"
        + (f" × {cfg.accumulate} accumulated" if cfg.accumulate > 1 else "")
        + f"\nschedule: {cfg.schedule}, lr {cfg.lr:g}, aux lr {cfg.aux_lr:g}, "
        f"{cfg.steps} steps, clip {cfg.clip:g}"
    )


def _note_schedule_change(old: dict[str, Any] | None, cfg: TrainConfig, step: int) -> None:
    """Extending a run moves fractional milestones and stretches a cosine: say so."""
    if not old or cfg.schedule not in ("step", "cosine"):
        return
    from licodec.train.config import apply

    before = apply(TrainConfig(), old, "checkpoint config")
    if cfg.schedule == "step" and before.milestone_steps() != cfg.milestone_steps():
        _say(
            f"note: learning-rate milestones now at steps {cfg.milestone_steps()} "
            f"(were {before.milestone_steps()}); resuming at step {step}"
        )
    elif cfg.schedule == "cosine" and before.steps != cfg.steps:
        _say(f"note: the cosine schedule now spans {cfg.steps} steps (was {before.steps})")


def run_training(
    cfg: TrainConfig,
    resume: bool = False,
    model: Any = None,
    extra_callbacks: list[Any] | None = None,
    on_trainer: Callable[[Any], None] | None = None,
) -> TrainResult:
    """Train (or resume) the run in ``cfg.out``; returns where things were written.

    ``model`` replaces the registry model (programmatic use, tests).
    """
    try:
        import lightning as L
    except ImportError:
        raise LicodecError("training needs Lightning: pip install 'licodec[train]'") from None
    import torch

    from licodec.train.callbacks import AtomicCheckpointIO, MetricsBar, RunMonitor
    from licodec.train.data import ImageIndex, load_val_images, scan_images
    from licodec.train.module import LitCompression, TrainingDiverged

    t_start = time.time()
    cfg.validate()
    run_dir = Path(cfg.out)
    ckpt_path = run_dir / "checkpoints" / "last.ckpt"
    index_path = run_dir / "data_index.json"
    child = _is_child_process()

    if cfg.metric == "ms-ssim":
        try:
            import pytorch_msssim  # noqa: F401
        except ImportError:
            raise LicodecError(
                "MS-SSIM training needs pytorch-msssim: pip install 'licodec[train]'"
            ) from None

    if not resume and ckpt_path.exists() and not child:
        raise OutputError(
            f"{run_dir} already holds a training run; continue it with "
            f"--resume {run_dir} or choose another --out"
        )
    if resume and not ckpt_path.exists():
        _say(f"no checkpoint in {run_dir} yet: starting this run from step 0")
    resume_ckpt = ckpt_path if resume and ckpt_path.exists() else None
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create run directory {run_dir}: {exc.strerror}") from None

    # -- data: the file list is fixed at the first start so a resume sees the same stream
    if index_path.exists() and (resume or child):
        index = ImageIndex.load(index_path)
    else:
        index = scan_images(cfg.data, min_size=cfg.crop)
        if not child:
            index.save(index_path)
    if not index.files:
        raise InputError(
            f"no usable training images in {cfg.data} ({index.describe()}); "
            f"images need both sides >= the crop size {cfg.crop}"
        )
    val_images = None
    if cfg.val:
        _, val_images = load_val_images(cfg.val, cfg.val_images)

    # -- model: initialised from the run's seed, the same on every rank
    if model is None:
        torch.manual_seed(cfg.seed)
        model = build_model(cfg)
    init_desc = None
    if cfg.init and resume_ckpt is None:
        init_desc = load_init_weights(model, cfg.init, cfg.model, cfg.lambdas)
    elif cfg.num_rates and resume_ckpt is None:
        model.init_rate_gains(cfg.lambdas, _geometric_mean(cfg.lambdas))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    module = LitCompression(model, cfg)

    if not child:
        save_yaml(
            cfg,
            run_dir / "config.yaml",
            extra={
                "lambda_in_effect": cfg.lambdas if cfg.num_rates else cfg.lambda_,
                "ms_ssim_window": module.ms_ssim_win if cfg.metric == "ms-ssim" else None,
            },
        )
        _say(describe_run(cfg, model, index))
        if init_desc:
            _say(f"initialised from {init_desc}")
        if cfg.metric == "ms-ssim" and module.ms_ssim_win != 11:
            _say(
                f"note: MS-SSIM on {cfg.crop}px crops uses a {module.ms_ssim_win}-px window "
                f"(5 scales need > {16 * 10} px for the standard 11-px window)"
            )

    progress = cfg.progress
    if progress == "auto":
        progress = "bar" if sys.stdout.isatty() else "log"
    resume_step = None
    if resume_ckpt is not None:
        saved = torch.load(resume_ckpt, map_location="cpu", weights_only=True, mmap=True)
        resume_step = int(saved.get("global_step", 0))
        _note_schedule_change(saved.get("licodec", {}).get("config"), cfg, resume_step)
        _say(f"resuming from step {resume_step} ({resume_ckpt})")
        del saved
    monitor = RunMonitor(run_dir, val_images, progress, resume_step=resume_step)
    callbacks: list[Any] = [monitor]
    if progress == "bar":
        callbacks.append(MetricsBar(monitor))
    callbacks += list(extra_callbacks or [])

    devices = _devices(cfg.devices)
    accelerator = "gpu" if cfg.accelerator == "cuda" else cfg.accelerator
    with _quiet_lightning():  # its accelerator banners are logged while it is built
        try:
            trainer = L.Trainer(
                accelerator=accelerator,
                devices=devices,
                num_nodes=cfg.num_nodes,
                strategy=_strategy(cfg, devices),
                precision=cfg.precision,  # type: ignore[arg-type]
                max_steps=cfg.steps,
                max_epochs=-1,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=progress == "bar",
                enable_model_summary=False,
                callbacks=callbacks,
                plugins=_plugins(AtomicCheckpointIO()),
                use_distributed_sampler=False,
                num_sanity_val_steps=0,
                limit_val_batches=0,
                default_root_dir=str(run_dir),
                benchmark=True if accelerator != "cpu" else None,
            )
        except Exception as exc:  # noqa: BLE001 - Lightning's MisconfigurationException & co
            raise InputError(f"cannot set up the trainer: {exc}".splitlines()[0]) from None
    if on_trainer is not None:
        on_trainer(trainer)

    pin = trainer.accelerator is not None and trainer.strategy.root_device.type == "cuda"
    datamodule = _make_datamodule(cfg, index, pin_memory=pin)
    if (
        cfg.threads is None
        and trainer.strategy.root_device.type == "cpu"
        and trainer.num_devices > 1
    ):
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // trainer.num_devices))
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.compile:
        model.compile()

    with warnings.catch_warnings(), _quiet_lightning():
        # An endless stream has no length; Lightning says so once per run.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*IterableDataset.*__len__.*")
        # Lightning 2.6 calls a pytree API that torch deprecated; not actionable here.
        warnings.filterwarnings("ignore", message=".*treespec, LeafSpec.*")
        try:
            trainer.fit(
                module, datamodule=datamodule, ckpt_path=str(resume_ckpt) if resume_ckpt else None
            )
        except TrainingDiverged as exc:
            raise TrainError(str(exc)) from None

    step = trainer.global_step
    result = TrainResult(
        run_dir,
        step,
        ckpt_path if ckpt_path.exists() else None,
        None,
        dict(monitor.last_train),
        dict(monitor.last_val),
        time.time() - t_start,
        trainer.is_global_zero,
    )
    if trainer.interrupted:
        raise TrainError(f"training interrupted at step {step}; continue with --resume {run_dir}")
    if not trainer.is_global_zero:
        return result
    if cfg.export and step > 0:
        meta: dict[str, Any] = {
            "lambda": cfg.lambda_,
            "metric": cfg.metric,
            "quality": cfg.quality,
            "steps": step,
            "data": index.describe(),
            "crop": cfg.crop,
            "batch_size": cfg.batch_size * cfg.accumulate * trainer.world_size,
            "trainer": "licodec train",
        }
        if cfg.num_rates:  # one file, every quality
            meta.update(
                {
                    "quality": None,
                    "lambda": None,
                    "lambdas": cfg.lambdas,
                    "qualities": list(range(1, cfg.num_rates + 1)),
                }
            )
            if cfg.rate_weights is not None:
                meta["rate_weights"] = cfg.rate_weights
        if cfg.init:
            meta["init"] = str(cfg.init)
        if monitor.last_val:
            meta["val"] = {
                "images": f"{len(val_images or [])} from {cfg.val}",
                **{k[4:]: round(v, 6) for k, v in monitor.last_val.items() if k != "val_seconds"},
            }
        result.weights = export_weights(module.model, run_dir / "model.safetensors", meta)
    summary = {
        "step": step,
        "seconds": round(result.seconds, 1),
        "train": result.train,
        "val": result.val,
        "weights": str(result.weights) if result.weights else None,
    }
    atomic_write_text(run_dir / "result.json", json.dumps(summary, indent=2))
    return result
