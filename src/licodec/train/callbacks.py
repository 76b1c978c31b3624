"""Periodic work of a run: metrics, logs, validation, checkpoints, progress display.

Everything happens at optimizer-step boundaries, on a fixed step schedule, so all
DDP ranks reach the same collective calls in the same order. Validation runs on
rank 0 only, on a copy of the model (``update(force=True)`` rebuilds the CDF tables
of the copy; the training model's buffers never change shape), then its result is
broadcast so that a plateau schedule takes the same decision on every rank.
"""

from __future__ import annotations

import copy
import csv
import math
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm
from lightning.pytorch.plugins.io import TorchCheckpointIO

from licodec.codec.files import atomic_output
from licodec.train.module import LitCompression, TrainingDiverged

__all__ = [
    "AtomicCheckpointIO",
    "CsvLog",
    "MetricsBar",
    "RunMonitor",
    "val_padding",
    "validate_model",
]


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save to a temporary file in the same folder, fsync, then os.replace.

    Lightning's own save writes the final path in place (through fsspec), which a
    SIGKILL can leave half-written; a rename is atomic on POSIX file systems.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        with atomic_output(Path(path), mkdir=True) as tmp:
            torch.save(checkpoint, tmp)


class CsvLog:
    """Append-only metrics.csv; on resume, rows after the resumed step are dropped.

    (Lightning's CSVLogger deletes an existing metrics file, which loses a resumed
    run's history.)
    """

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        self.fields: list[str] = []
        if path.exists():
            with open(path, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                self.fields = list(reader.fieldnames or [])
                rows = [
                    r
                    for r in reader
                    if resume_step is None or int(float(r.get("step") or 0)) <= resume_step
                ]
            self._rewrite(rows)

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        with atomic_output(self.path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.fields)
            writer.writeheader()
            writer.writerows(rows)

    def log(self, row: dict[str, Any]) -> None:
        new = [k for k in row if k not in self.fields]
        if new:
            old_rows: list[dict[str, Any]] = []
            if self.path.exists():
                with open(self.path, newline="", encoding="utf-8") as fh:
                    old_rows = list(csv.DictReader(fh))
            self.fields += new
            self._rewrite(old_rows)
        with open(self.path, "a", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, fieldnames=self.fields).writerow(row)


def val_padding(model: torch.nn.Module) -> int:
    """Models of our registry pad internally (``pad_multiple``); others get padded here."""
    return 0 if hasattr(model, "pad_multiple") else 64


@torch.no_grad()
def validate_model(
    model: torch.nn.Module,
    images: list[np.ndarray],
    lmbda: float,
    metric: str,
    device: torch.device,
    rate: int | None = None,
) -> dict[str, float]:
    """Real bitstreams: update(force=True), compress, decompress; mean bpp and PSNR.

    ``rate``: the operating point of a variable-rate model.
    """
    import torch.nn.functional as F

    net: Any = copy.deepcopy(model).to(device).eval()
    net.update(force=True)
    pad = val_padding(net)
    bpps, psnrs, mses, msssims = [], [], [], []
    t0 = time.perf_counter()
    for img in images:
        h, w = img.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
        x = x.to(device=device, dtype=torch.float32).div_(255.0)
        xin = x
        if pad:
            ph, pw = (-h) % pad, (-w) % pad
            xin = F.pad(x, (0, pw, 0, ph), mode="constant", value=0.0)
        kw = {} if rate is None else {"rate": rate}
        enc = net.compress(xin, **kw)
        nbytes = sum(len(s) for group in enc["strings"] for s in group)
        if "size" in enc:
            dec = net.decompress(enc["strings"], enc["shape"], enc["size"], **kw)
        else:
            dec = net.decompress(enc["strings"], enc["shape"], **kw)
        x_hat = dec["x_hat"][..., :h, :w].clamp(0, 1)
        x_hat = torch.round(x_hat * 255.0) / 255.0  # what a saved 8-bit image holds
        mse = float(F.mse_loss(x_hat, x))
        bpps.append(nbytes * 8.0 / (h * w))
        mses.append(mse)
        psnrs.append(-10.0 * math.log10(max(mse, 1e-12)))
        if metric == "ms-ssim" and min(h, w) > 160:
            from pytorch_msssim import ms_ssim

            msssims.append(float(ms_ssim(x_hat, x, data_range=1.0)))
    out = {
        "val_bpp": float(np.mean(bpps)),
        "val_psnr": float(np.mean(psnrs)),
        "val_mse": float(np.mean(mses)),
        "val_seconds": time.perf_counter() - t0,
    }
    if metric == "ms-ssim" and msssims:
        out["val_ms_ssim"] = float(np.mean(msssims))
        out["val_loss"] = lmbda * (1.0 - out["val_ms_ssim"]) + out["val_bpp"]
    else:
        out["val_loss"] = lmbda * 255.0**2 * out["val_mse"] + out["val_bpp"]
    return out


class MetricsBar(TQDMProgressBar):
    """The tqdm bar, showing loss/bpp/PSNR/lr from :class:`RunMonitor` instead of self.log.

    It counts optimizer steps against the step budget from the first frame on:
    Lightning's own bar ("Training", then "Epoch 0" over an endless epoch) is
    never drawn.
    """

    def __init__(self, monitor: RunMonitor, refresh_rate: int = 1) -> None:
        super().__init__(refresh_rate=refresh_rate)
        self.monitor = monitor

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        return dict(self.monitor.bar_metrics)

    def init_train_tqdm(self) -> Tqdm:
        trainer = self.trainer
        return Tqdm(
            desc="train",
            total=trainer.max_steps,
            initial=trainer.global_step,
            position=2 * self.process_position,
            disable=self.is_disabled,
            leave=True,
            dynamic_ncols=True,
            file=sys.stdout,
            smoothing=0,
            bar_format=self.BAR_FORMAT,
        )

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        # endless data, one epoch: the bar made in on_train_start already counts steps
        if self._train_progress_bar is None:
            self.train_progress_bar = self.init_train_tqdm()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        n = trainer.global_step
        bar = self.train_progress_bar
        if n != bar.n and (n % self.refresh_rate == 0 or n >= (trainer.max_steps or 0)):
            bar.n = n
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            bar.refresh()


class RunMonitor(Callback):
    """Metrics, logs, validation, checkpoints and NaN checks on a fixed step schedule."""

    def __init__(
        self,
        run_dir: Path,
        val_images: list[np.ndarray] | None,
        progress: str,
        resume_step: int | None = None,
    ) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.ckpt_dir = run_dir / "checkpoints"
        self.val_images = val_images
        self.progress = progress
        self.resume_step = resume_step
        self.bar_metrics: dict[str, str] = {}
        self.last_val: dict[str, float] = {}
        self.last_train: dict[str, float] = {}
        self._sum: dict[str, float] = {}
        self._n = 0
        self._done_step = -1
        self._saved_step = -1
        self._val_step = -1
        self._t_interval = time.perf_counter()
        self._steps_interval = 0
        self.csv: CsvLog | None = None
        self.tb: Any = None
        self.started_at = time.time()

    # ------------------------------------------------------------ setup
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._done_step = self._saved_step = trainer.global_step
        self._t_interval = time.perf_counter()
        self._steps_interval = 0
        if trainer.is_global_zero:
            logs = self.run_dir / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            self.csv = CsvLog(logs / "metrics.csv", self.resume_step)
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(
                    str(logs / "tensorboard"),
                    purge_step=trainer.global_step if self.resume_step is not None else None,
                )
            except Exception:  # noqa: BLE001 - TensorBoard is optional
                self.tb = None

    # ------------------------------------------------------------ per step
    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        assert isinstance(pl_module, LitCompression)
        if pl_module.micro != 0:
            return  # inside a gradient-accumulation cycle
        step = trainer.global_step
        if step == self._done_step:
            return
        self._done_step = step
        self._steps_interval += 1
        cfg = pl_module.cfg
        is_last = step >= (trainer.max_steps or 0)
        do_log = step % cfg.log_every == 0 or is_last
        do_ckpt = step % cfg.ckpt_every == 0 or bool(cfg.keep_every and step % cfg.keep_every == 0)
        do_val = bool(self.val_images is not None) and (step % cfg.val_every == 0)
        if step % pl_module.sync_every == 0 or do_log or do_ckpt or is_last:
            self._take(pl_module.pull_metrics())
        if do_log:
            self._log_interval(trainer, pl_module, step)
        if do_val:
            self._validate(trainer, pl_module, step)
        if do_ckpt and not is_last:  # the final checkpoint is written in on_train_end
            self.save(trainer, pl_module, keep=bool(cfg.keep_every and step % cfg.keep_every == 0))

    def _take(self, metrics: dict[str, float]) -> None:
        if not metrics:
            return
        for k, v in metrics.items():
            self._sum[k] = self._sum.get(k, 0.0) + v
        self._n += 1
        self.bar_metrics = {
            "loss": f"{metrics['loss']:.4g}",
            "bpp": f"{metrics['bpp']:.3f}",
            "psnr": f"{metrics.get('psnr', float('nan')):.2f}",
        }
        if "ms_ssim" in metrics:
            self.bar_metrics["msssim"] = f"{metrics['ms_ssim']:.4f}"
        if self.last_val:
            self.bar_metrics["val_bpp"] = f"{self.last_val['val_bpp']:.3f}"
            self.bar_metrics["val_psnr"] = f"{self.last_val['val_psnr']:.2f}"

    def _log_interval(self, trainer: L.Trainer, module: LitCompression, step: int) -> None:
        if not self._n:
            return
        avg = {k: v / self._n for k, v in self._sum.items()}
        if "mse" in avg:
            avg["psnr"] = -10.0 * math.log10(max(avg["mse"], 1e-12))
        self._sum, self._n = {}, 0
        elapsed = time.perf_counter() - self._t_interval
        steps = self._steps_interval
        self._t_interval, self._steps_interval = time.perf_counter(), 0
        cfg = module.cfg
        images = steps * cfg.batch_size * cfg.accumulate * trainer.world_size
        avg["steps_per_s"] = steps / elapsed if elapsed > 0 else float("nan")
        avg["images_per_s"] = images / elapsed if elapsed > 0 else float("nan")
        avg["lr"] = cfg.lr * module.lr_control.factor(max(0, step - 1))
        self.last_train = avg
        if cfg.schedule == "plateau" and self.val_images is None:
            # no held-out set: the plateau schedule watches the training loss (all ranks)
            local = torch.tensor(avg["loss"], device=module.device)
            value = float(trainer.strategy.reduce(local, reduce_op="mean"))
            if module.lr_control.observe(value):
                self._say(
                    trainer, f"step {step}: lr reduced to {cfg.lr * module.lr_control.scale:.3g}"
                )
        if not trainer.is_global_zero:
            return
        row = {"step": step, "time": round(time.time() - self.started_at, 2), **avg}
        if self.csv is not None:
            self.csv.log(row)
        if self.tb is not None:
            for k, v in avg.items():
                self.tb.add_scalar(f"train/{k}", v, step)
        if self.progress == "log":
            eta = (trainer.max_steps - step) / avg["steps_per_s"] if avg["steps_per_s"] > 0 else 0
            parts = [
                f"step {step}/{trainer.max_steps}",
                f"loss {avg['loss']:.4g}",
                f"bpp {avg['bpp']:.4f}",
                f"psnr {avg.get('psnr', float('nan')):.2f}",
            ]
            if "ms_ssim" in avg:
                parts.append(f"ms-ssim {avg['ms_ssim']:.4f}")
            parts += [
                f"aux {avg['aux_loss']:.3g}",
                f"lr {avg['lr']:.3g}",
                f"{avg['images_per_s']:.2f} img/s",
                f"eta {_hms(eta)}",
            ]
            print(" | ".join(parts), flush=True)

    def _validate(self, trainer: L.Trainer, module: LitCompression, step: int) -> None:
        result = torch.zeros(8, dtype=torch.float64)
        keys = ["val_bpp", "val_psnr", "val_mse", "val_loss", "val_seconds", "val_ms_ssim"]
        if trainer.is_global_zero:
            assert self.val_images is not None
            cfg = module.cfg
            rate = min(cfg.quality, cfg.num_rates) - 1 if cfg.num_rates else None
            vals = validate_model(
                module.model, self.val_images, cfg.lambda_, cfg.metric, module.device, rate
            )
            for i, k in enumerate(keys):
                result[i] = vals.get(k, float("nan"))
        if trainer.world_size > 1:
            result = trainer.strategy.broadcast(result, src=0)
        vals = {k: float(result[i]) for i, k in enumerate(keys) if not math.isnan(result[i])}
        self.last_val = vals
        self._val_step = step
        if module.lr_control.observe(vals["val_loss"]):
            self._say(
                trainer, f"step {step}: lr reduced to {module.cfg.lr * module.lr_control.scale:.3g}"
            )
        if not trainer.is_global_zero:
            return
        if self.csv is not None:
            self.csv.log({"step": step, "time": round(time.time() - self.started_at, 2), **vals})
        if self.tb is not None:
            for k, v in vals.items():
                self.tb.add_scalar(f"val/{k[4:]}", v, step)
        text = (
            f"step {step}: validation on {len(self.val_images or [])} images: "
            f"{vals['val_bpp']:.4f} bpp, {vals['val_psnr']:.2f} dB PSNR"
            + (f", MS-SSIM {vals['val_ms_ssim']:.4f}" if "val_ms_ssim" in vals else "")
            + f" (real bitstreams, {vals['val_seconds']:.1f} s)"
        )
        self._say(trainer, text)

    def _say(self, trainer: L.Trainer, text: str) -> None:
        if not trainer.is_global_zero or self.progress == "none":
            return
        if self.progress == "bar":
            from tqdm import tqdm

            tqdm.write(text)
        else:
            print(text, flush=True)

    # ------------------------------------------------------------ checkpoints
    def save(self, trainer: L.Trainer, module: LitCompression, keep: bool = False) -> Path:
        """Write checkpoints/last.ckpt atomically (all ranks must call this)."""
        step = trainer.global_step
        if not module.params_finite():
            raise TrainingDiverged(
                f"parameters are NaN/inf at step {step}; not saving. "
                f"The last good checkpoint is {self.ckpt_dir / 'last.ckpt'}."
            )
        last = self.ckpt_dir / "last.ckpt"
        trainer.save_checkpoint(last, weights_only=False)
        if keep:
            trainer.save_checkpoint(self.ckpt_dir / f"step-{step:08d}.ckpt", weights_only=False)
        self._saved_step = step
        return last

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        assert isinstance(pl_module, LitCompression)
        step = trainer.global_step
        self._take(pl_module.pull_metrics())
        if self._n:
            self._log_interval(trainer, pl_module, step)
        if self.val_images is not None and self._val_step != step:
            self._validate(trainer, pl_module, step)
        if self._saved_step != step:
            self.save(trainer, pl_module)
        if self.tb is not None:
            self.tb.flush()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if self.tb is not None:
            self.tb.flush()


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()
