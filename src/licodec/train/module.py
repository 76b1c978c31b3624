"""The LightningModule: one rate–distortion step with two optimizers (manual optimization).

Per optimizer step (after ``accumulate`` micro-batches):
1. main Adam on every parameter except the entropy bottleneck's ``quantiles``:
   loss = λ·D + bpp, gradients averaged over micro-batches (DDP syncs only on the last
   one), clipped to norm ``clip`` after AMP unscaling, then the step;
2. aux Adam on the ``quantiles`` only, minimising ``model.aux_loss()`` — after the main
   step, as in the authors' scripts. The aux loss does not depend on the data, so it is
   computed once per optimizer step, in float32, outside DDP (the quantiles are excluded
   from DDP's gradient buckets; every rank computes the same values).

Randomness (the training-time quantisation noise) is reseeded from
``(seed, rank, step, micro-batch)`` before each forward pass, so a resumed run draws
exactly the same noise as an uninterrupted one without storing generator states.

Metrics stay on the device and are pulled to Python only every ``sync_every`` steps
(1 on CPU, where it is free; ``log_every`` on GPUs, to avoid a stall per step).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.strategies import ParallelStrategy
from torch import nn

from licodec.errors import ModelError
from licodec.train.config import TrainConfig
from licodec.train.data import _mix
from licodec.train.losses import RateDistortionLoss, ms_ssim_window

__all__ = ["LRController", "LitCompression", "TrainingDiverged", "split_parameters"]


class TrainingDiverged(RuntimeError):
    """The loss or the gradients became NaN/inf."""


def split_parameters(model: nn.Module) -> tuple[list[str], list[str]]:
    """Names of (main, aux) parameters: aux = names ending in ``quantiles``."""
    main: list[str] = []
    aux: list[str] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (aux if name.endswith("quantiles") else main).append(name)
    return main, aux


class LRController:
    """Learning-rate factor per step: warm-up × (step | cosine | constant | plateau).

    A small state object instead of a torch scheduler so that warm-up and plateau
    combine and the state (plateau scale, best value) is saved with the checkpoint.
    """

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.milestones = cfg.milestone_steps()
        self.scale = 1.0  # plateau reductions so far
        self.best = math.inf
        self.bad = 0

    def factor(self, step: int) -> float:
        cfg = self.cfg
        f = 1.0
        if cfg.warmup > 0 and step < cfg.warmup:
            f *= (step + 1) / cfg.warmup
        if cfg.schedule == "step":
            f *= cfg.gamma ** sum(1 for m in self.milestones if step >= m)
        elif cfg.schedule == "cosine":
            span = max(1, cfg.steps - cfg.warmup)
            t = min(1.0, max(0.0, (step - cfg.warmup) / span))
            floor = min(1.0, cfg.min_lr / cfg.lr)
            f *= floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))
        elif cfg.schedule == "plateau":
            f *= self.scale
        return f

    def observe(self, value: float) -> bool:
        """Plateau schedule: feed a validation (or running) loss; True when lr was reduced."""
        if self.cfg.schedule != "plateau" or not math.isfinite(value):
            return False
        if value < self.best * (1.0 - 1e-4):  # torch's default relative threshold
            self.best, self.bad = value, 0
            return False
        self.bad += 1
        if self.bad > self.cfg.plateau_patience:
            self.scale *= self.cfg.plateau_factor
            self.bad = 0
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "best": self.best, "bad": self.bad}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scale = float(state["scale"])
        self.best = float(state["best"])
        self.bad = int(state["bad"])


class LitCompression(L.LightningModule):
    """Wraps a CompressionModel for rate–distortion training."""

    def __init__(self, model: nn.Module, cfg: TrainConfig) -> None:
        super().__init__()
        self.model: Any = model  # a CompressionModel (aux_loss, update, compress, ...)
        self.cfg = cfg
        self.automatic_optimization = False
        win = ms_ssim_window(cfg.crop, cfg.ms_ssim_win) if cfg.metric == "ms-ssim" else 11
        self.ms_ssim_win = win
        self.criterion = RateDistortionLoss(cfg.lambda_, cfg.metric, win)
        # Variable rate: every image of a batch gets a random operating point.
        self.lambdas = torch.tensor(cfg.lambdas) if cfg.num_rates else None
        self.rate_weights = (
            torch.tensor(cfg.rate_weights, dtype=torch.float64)
            if cfg.num_rates and cfg.rate_weights is not None
            else None
        )
        self.lr_control = LRController(cfg)
        main, aux = split_parameters(model)
        if not aux:
            raise ValueError("model has no entropy-bottleneck 'quantiles' parameters")
        self._main_names, self._aux_names = main, aux
        # The quantiles are trained by their own loss outside DDP's forward/backward.
        self._ddp_params_and_buffers_to_ignore = [f"model.{n}" for n in aux]
        self.micro = 0  # micro-batches done in the current optimizer step
        self.stream_start = 0  # global data-stream position where this fit started
        self.sync_every = 1
        self._reset_sums()
        self.last_metrics: dict[str, float] = {}
        self.interval_metrics: dict[str, float] = {}
        self._main_params: list[nn.Parameter] = []
        self._grad_norm: torch.Tensor | None = None
        self._pending: torch.Tensor | None = None

    # ------------------------------------------------------------ optimizers
    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        params = dict(self.model.named_parameters())
        self._main_params = [params[n] for n in self._main_names]
        fused = self._use_fused()
        main = torch.optim.Adam(self._main_params, lr=self.cfg.lr, **fused)
        aux = torch.optim.Adam([params[n] for n in self._aux_names], lr=self.cfg.aux_lr)
        return [main, aux]

    def _use_fused(self) -> dict[str, Any]:
        # Fused Adam is the fastest implementation on CPU and CUDA (same update rule).
        # Not with fp16 AMP: Lightning then leaves unscaling to the optimizer's step,
        # which would make the clipping in on_before_optimizer_step see scaled gradients.
        if self.cfg.precision in ("32-true", "32", "bf16-mixed"):
            return {"fused": True}
        return {"foreach": True}

    # ------------------------------------------------------------ metrics
    def _reset_sums(self) -> None:
        self._sums: torch.Tensor | None = None
        self._count = 0
        self._bad: torch.Tensor | None = None

    def pull_metrics(self) -> dict[str, float]:
        """Averages since the last pull (one device sync); raises on NaN/inf."""
        if self._sums is None or self._count == 0:
            return {}
        values = (self._sums / self._count).tolist()
        bad = bool(self._bad.item()) if self._bad is not None else False
        if self.trainer.world_size > 1:
            flag = torch.tensor(float(bad), device=self.device)
            bad = bool(self.trainer.strategy.reduce(flag, reduce_op="sum").item() > 0)
        keys = self._metric_keys()
        out = dict(zip(keys, values))
        first, last = self._interval_start, self.global_step
        self._sums = None
        self._count = 0
        self._bad = None
        self._interval_start = last
        if bad or not all(math.isfinite(v) for v in values):
            raise TrainingDiverged(
                f"the loss became NaN or infinite between steps {first} and {last} "
                f"(averages: {', '.join(f'{k}={v:.4g}' for k, v in out.items())}); "
                "the run was stopped and the last good checkpoint kept. "
                "Try a lower learning rate (--lr) or resume from that checkpoint."
            )
        if "mse" in out:
            out["psnr"] = -10.0 * math.log10(max(out["mse"], 1e-12))
        return out

    def _metric_keys(self) -> list[str]:
        keys = ["loss", "bpp", "mse", "aux_loss", "grad_norm"]
        if self.cfg.metric == "ms-ssim":
            keys.append("ms_ssim")
        return keys

    _interval_start = 0

    # ------------------------------------------------------------ training
    def _draw_rates(self, n: int) -> torch.Tensor:
        """One operating point per image: uniform, or in proportion to ``rate_weights``."""
        assert self.lambdas is not None
        if self.rate_weights is None:
            return torch.randint(len(self.lambdas), (n,))
        return torch.multinomial(self.rate_weights, n, replacement=True)

    def on_train_start(self) -> None:
        self._interval_start = self.global_step
        self.sync_every = 1 if self.device.type == "cpu" else self.cfg.log_every

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        cfg = self.cfg
        opt = self.optimizers()[0]  # type: ignore[index]
        step = self.global_step
        last = self.micro + 1 >= cfg.accumulate
        torch.manual_seed(_mix(cfg.seed, self.global_rank, step, self.micro))

        x = batch.to(torch.float32).div_(255.0)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        # DDP: synchronise gradients only on the last micro-batch of a step
        strategy = self.trainer.strategy
        sync_ctx = (
            strategy.block_backward_sync()
            if isinstance(strategy, ParallelStrategy) and not last
            else contextlib.nullcontext()
        )
        with sync_ctx:
            if self.lambdas is None:
                out = self.model(x)
                losses = self.criterion(out, x)
            else:
                rate = self._draw_rates(x.shape[0])
                out = self.model(x, rate)  # on the CPU: the model checks it without a sync
                losses = self.criterion(out, x, self.lambdas[rate].to(x.device))
            self.manual_backward(losses["loss"] / cfg.accumulate)
        vals = [losses["loss"].detach(), losses["bpp"].detach(), losses["mse"].detach()]
        self._accumulate(vals, losses)

        self.micro += 1
        if not last:
            return
        self.micro = 0

        factor = self.lr_control.factor(step)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * factor
        opt.step()  # gradient clipping: on_before_optimizer_step (after AMP unscale)
        opt.zero_grad(set_to_none=True)

        aux_loss = self._aux_step()
        extra = [
            aux_loss.detach(),
            self._grad_norm if self._grad_norm is not None else aux_loss.new_zeros(()),
        ]
        self._add_step_metrics(extra)
        self._count += 1

    def _accumulate(self, vals: list[torch.Tensor], losses: dict[str, torch.Tensor]) -> None:
        if self.cfg.metric == "ms-ssim":
            vals.append(losses["ms_ssim"].detach())
        v = torch.stack([t.float() for t in vals]) / self.cfg.accumulate
        self._pending = v if self._pending is None else self._pending + v
        bad = ~torch.isfinite(v).all()
        self._bad = bad if self._bad is None else (self._bad | bad)

    def _add_step_metrics(self, extra: list[torch.Tensor]) -> None:
        v = self._pending
        assert v is not None
        self._pending = None
        full = torch.cat([v[:3], torch.stack([e.float() for e in extra]), v[3:]])
        self._sums = full if self._sums is None else self._sums + full

    def _aux_step(self) -> torch.Tensor:
        _, aux_opt = self.optimizers(use_pl_optimizer=False)  # type: ignore[misc]
        with torch.autocast(device_type=self.device.type, enabled=False):
            aux_loss = self.model.aux_loss()
        aux_loss.backward()
        if dist.is_available() and dist.is_initialized() and self.trainer.world_size > 1:
            # identical on every rank in exact arithmetic; averaging keeps them in lockstep
            for group in aux_opt.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        dist.all_reduce(p.grad)
                        p.grad.div_(self.trainer.world_size)
        for group in aux_opt.param_groups:
            group["lr"] = self.cfg.aux_lr
        aux_opt.step()
        aux_opt.zero_grad(set_to_none=True)
        return aux_loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Called for the main (Lightning-wrapped) optimizer only, after AMP unscaling.
        params = self._main_params
        if self.cfg.clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.clip)
        else:
            grads = [p.grad for p in params if p.grad is not None]
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        self._grad_norm = norm.detach()
        if self.cfg.precision != "16-mixed":  # fp16 AMP skips inf steps by design
            bad = ~torch.isfinite(self._grad_norm)
            self._bad = bad if self._bad is None else (self._bad | bad)

    # ------------------------------------------------------------ checkpoints
    def params_finite(self) -> bool:
        norms = torch._foreach_norm([p.detach().float() for p in self.model.parameters()])
        return bool(torch.isfinite(torch.stack(norms)).all())

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        world = self.trainer.world_size
        checkpoint["licodec"] = {
            "stream_position": self.global_step * self.cfg.accumulate * self.cfg.batch_size * world,
            "step": self.global_step,
            "world_size": world,
            "lr_control": self.lr_control.state_dict(),
            "config": self.cfg.to_dict(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("licodec", {})
        self.stream_start = int(state.get("stream_position", 0))
        if "lr_control" in state:
            self.lr_control.load_state_dict(state["lr_control"])

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        # Delegate to the CompressionModel so its entropy-model buffers (CDF tables,
        # whose sizes change with update()) are resized before loading.
        prefix = "model."
        inner = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
        rest = [k for k in state_dict if not k.startswith(prefix)]
        if rest and strict:
            raise KeyError(f"unexpected keys in checkpoint: {rest[:5]}")
        try:
            return self.model.load_state_dict(inner, strict=strict)
        except RuntimeError as exc:  # e.g. the registry's defaults changed since the run began
            first = " ".join(str(exc).split())[:300]
            raise ModelError(
                f"the checkpoint does not fit {self.cfg.model} as registered now "
                f"(model_kwargs {self.cfg.model_kwargs}): {first}"
            ) from None
