"""Rate gains: one set of weights, many rates (Cui et al., CVPR 2021, "Asymmetric gained
deep image compression with continuous rate adaptation").

A variable-rate model owns four (rates, channels) log-gain tables: ``gain_y`` and
``inv_gain_y`` scale ``y`` before quantization and undo it before synthesis,
``gain_z`` and ``inv_gain_z`` do the same for ``z``. These functions pick a
rate's rows (a rate between two trained ones interpolates them in float64),
apply them, and move them (a starting point for another λ table). The tables
stay the model's own parameters, under the names its weights files use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["Gains", "gains_of", "interpolate", "retarget", "spread", "times"]


class Gains(NamedTuple):
    """Per-image (B, C, 1, 1) log-gains of a variable-rate model; all None at fixed rate."""

    y: Tensor | None = None
    inv_y: Tensor | None = None
    z: Tensor | None = None
    inv_z: Tensor | None = None


def times(t: Tensor, log_gain: Tensor | None) -> Tensor:
    """``t * exp(log_gain)``, the exp taken in ``t``'s precision (at least float32).

    The portable path (float64 ``t``) thus takes it in float64 (float32 ``exp``
    differs between CPU kernels), and an interpolated float64 log-gain does not
    turn a float32 path into float64.
    """
    if log_gain is None:
        return t
    return t * torch.exp(log_gain.to(torch.promote_types(t.dtype, torch.float32)))


def interpolate(p: Tensor, position: float) -> Tensor:
    """Row ``position`` of ``p``, linear between the two neighbouring rows, in float64.

    At an integer position it is that row exactly (as a trained rate is).
    """
    seg = min(math.floor(position), p.shape[0] - 1)
    frac = position - seg
    if frac == 0:
        return p[seg].double()
    a, b = p[seg].double(), p[seg + 1].double()
    return a + frac * (b - a)


def gains_of(
    tables: Sequence[Tensor], num_rates: int, rate: float | Tensor | None, batch: int
) -> Gains:
    """The gains of ``rate`` (checked) for a batch of ``batch`` images, from the model's
    four ``tables`` (``gain_y``, ``inv_gain_y``, ``gain_z``, ``inv_gain_z``).

    A non-integer float ``rate`` lies between two trained rates: its log-gains
    are interpolated linearly (in float64; the continuous rate adaptation).
    """
    if not num_rates:
        if rate is not None:
            raise ValueError("this model is fixed-rate: do not pass rate")
        return Gains()
    if rate is None:
        raise ValueError(f"variable-rate model: pass rate in 0..{num_rates - 1}")
    if isinstance(rate, float) and not rate.is_integer():
        if not (math.isfinite(rate) and 0 <= rate <= num_rates - 1):
            raise ValueError(f"rate must be in 0..{num_rates - 1}, got {rate}")
        return Gains(
            *(
                interpolate(p.detach(), rate)[None, :, None, None].expand(batch, -1, 1, 1)
                for p in tables
            )
        )
    device = tables[0].device
    if isinstance(rate, Tensor):
        # Checked where it lives (the trainer passes a CPU tensor: no device sync).
        idx = rate.to(dtype=torch.long).reshape(-1)
        if idx.numel() == 1:
            idx = idx.expand(batch)
        lo, hi = (int(idx.min()), int(idx.max())) if idx.numel() else (0, 0)
        idx = idx.to(device)
    else:
        idx = torch.full((batch,), int(rate), dtype=torch.long, device=device)
        lo = hi = int(rate)
    if idx.numel() != batch or lo < 0 or hi >= num_rates:
        raise ValueError(f"rate must be in 0..{num_rates - 1} (one per image), got {rate}")
    return Gains(*(p[idx][:, :, None, None] for p in tables))


@torch.no_grad()
def spread(gain_y: Tensor, inv_gain_y: Tensor, lambdas: Sequence[float], reference: float) -> None:
    """Set the ``y`` gains to ``sqrt(λ_r / reference)`` (identity at ``reference``).

    At high rate the quantizer step that balances rate against MSE scales as
    ``1 / sqrt(λ)``; starting there saves the thousands of steps the gains
    would need to get there by gradient descent.
    """
    if len(lambdas) != gain_y.shape[0]:
        raise ValueError(f"need {gain_y.shape[0]} lambdas, got {len(lambdas)}")
    g = 0.5 * torch.log(torch.tensor(list(lambdas)) / float(reference))
    gain_y.copy_(g[:, None].expand_as(gain_y))
    inv_gain_y.copy_(-g[:, None].expand_as(inv_gain_y))


@torch.no_grad()
def retarget(tables: Sequence[Tensor], old: Sequence[float], new: Sequence[float]) -> None:
    """Move the rates from λs ``old`` to λs ``new`` (fine-tuning to another table).

    Every log-gain is interpolated piecewise linearly in log λ between the
    trained rates, and extrapolated along the end segments.
    """
    n = tables[0].shape[0]
    if len(old) != n or len(new) != n:
        raise ValueError(f"need {n} lambdas, got {len(old)} and {len(new)}")
    lo = torch.log(torch.tensor(list(old), dtype=torch.float64))
    if n < 2 or not bool((lo[1:] > lo[:-1]).all()):
        raise ValueError("old lambdas must be at least two and increasing")
    ln = torch.log(torch.tensor(list(new), dtype=torch.float64))
    seg = torch.clamp(torch.searchsorted(lo, ln) - 1, 0, n - 2)
    t = ((ln - lo[seg]) / (lo[seg + 1] - lo[seg]))[:, None]
    for p in tables:
        g = p.detach().double()
        p.copy_((g[seg] + t * (g[seg + 1] - g[seg])).to(p.dtype))
