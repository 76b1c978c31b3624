"""Rate–distortion losses of the papers.

MSE:     L = λ·255²·MSE(x̂, x) + bpp
MS-SSIM: L = λ·(1 − MS-SSIM(x̂, x)) + bpp
bpp = Σ −log₂ p over all likelihoods / (batch · H · W). x̂ is the unclamped output,
as in the authors' training scripts. Everything is computed in float32, also under
mixed precision, because log-likelihoods in bf16 lose the small differences the rate
term depends on.

MS-SSIM uses pytorch_msssim (5 scales, Gaussian window 11, σ 1.5), which needs a
smaller side > 16·(window − 1) = 160 px. For smaller crops the window is reduced to
the largest odd size w with 16·(w − 1) < crop (64 px → 3; at least 33 px crops);
the 5 scales and weights stay the same. The choice is logged.
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["RateDistortionLoss", "bpp_from_likelihoods", "ms_ssim_window"]


def ms_ssim_window(crop: int, requested: int | None = None) -> int:
    """The Gaussian window size usable for 5-scale MS-SSIM on ``crop``-px images."""
    if requested is not None:
        if 16 * (requested - 1) >= crop:
            raise ValueError(f"MS-SSIM window {requested} needs crops > {16 * (requested - 1)}")
        return requested
    if crop > 160:
        return 11
    w = (crop - 1) // 16 + 1  # largest w with 16(w-1) < crop
    w = min(w, 11)
    if w % 2 == 0:
        w -= 1
    if w < 3:
        raise ValueError(f"MS-SSIM needs crops of at least 33 px, got {crop}")
    return w


def bpp_from_likelihoods(likelihoods: dict[str, torch.Tensor], num_pixels: int) -> torch.Tensor:
    logs = [torch.log(lk.float()).sum() for lk in likelihoods.values()]
    return torch.stack(logs).sum() / (-math.log(2) * num_pixels)


class RateDistortionLoss(torch.nn.Module):
    """λ-weighted distortion plus the estimated rate; returns a dict of scalars."""

    def __init__(self, lmbda: float, metric: str = "mse", ms_ssim_win: int = 11) -> None:
        super().__init__()
        if metric not in ("mse", "ms-ssim"):
            raise ValueError(f"unknown metric {metric!r}")
        self.lmbda, self.metric, self.win = float(lmbda), metric, ms_ssim_win

    def forward(
        self, output: dict[str, Any], target: torch.Tensor, lmbda: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """``lmbda``: one λ per image (variable-rate training) instead of the fixed one."""
        n, _, h, w = target.shape
        x_hat = output["x_hat"].float()
        target = target.float()
        bpp = bpp_from_likelihoods(output["likelihoods"], n * h * w)
        per_mse = (x_hat - target).square().mean(dim=(1, 2, 3))
        mse = per_mse.mean()
        lam = torch.full_like(per_mse, self.lmbda) if lmbda is None else lmbda.float()
        out = {"bpp": bpp, "mse": mse}
        if self.metric == "mse":
            out["loss"] = (lam * per_mse).mean() * 255.0**2 + bpp
        else:
            from pytorch_msssim import ms_ssim

            per_ms = ms_ssim(x_hat, target, data_range=1.0, win_size=self.win, size_average=False)
            out["ms_ssim"] = per_ms.mean()
            out["loss"] = (lam * (1.0 - per_ms)).mean() + bpp
        return out
