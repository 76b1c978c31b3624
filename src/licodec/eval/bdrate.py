"""Bjøntegaard delta rate and delta quality between two RD curves.

BD-rate is the average bit-rate difference at equal quality: log-rate is
interpolated as a function of quality for both curves, integrated over the
quality interval both cover, and the mean difference is turned back into a
percentage (negative: the test curve needs fewer bits). BD-PSNR swaps the
roles (quality as a function of log-rate, mean difference in dB). Two
interpolations are offered: ``cubic``, the least-squares cubic polynomial of
the original VCEG-M33 proposal (what most papers report), and ``pchip``, a
piecewise-cubic Hermite interpolant through the points (no overshoot, the
variant later VCEG/JVET spreadsheets use). Both are only meaningful over the
range the curves share, so a small overlap is reported as a warning.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from licodec.errors import LicodecError

__all__ = [
    "METHODS",
    "MIN_OVERLAP_FRACTION",
    "BDOverlapWarning",
    "BDResult",
    "bd_quality",
    "bd_rate",
    "bjontegaard",
    "bjontegaard_curves",
]

METHODS = ("cubic", "pchip")
# Below this share of the narrower curve's range, or with fewer than two
# points of a curve inside the shared interval, the numbers are extrapolation.
MIN_OVERLAP_FRACTION = 0.5


class BDOverlapWarning(UserWarning):
    """The two curves share too small a range for a trustworthy BD number."""


@dataclass(frozen=True)
class BDResult:
    """BD numbers of a test curve against an anchor, with the overlap they rest on."""

    method: str
    bd_rate: float  # percent; negative means the test curve saves bits
    bd_quality: float  # dB (PSNR or MS-SSIM dB); positive means the test curve is better
    quality_interval: tuple[float, float]  # shared quality range used for BD-rate
    rate_interval: tuple[float, float]  # shared bpp range used for BD-quality
    overlap_test: float  # share of the test curve's quality range inside the overlap
    overlap_anchor: float  # same for the anchor curve
    low_overlap: bool
    reason: str = ""  # why low_overlap is set
    rate_overlap_test: float = 1.0  # share of the test curve's log-rate range in rate_interval
    rate_overlap_anchor: float = 1.0  # same for the anchor curve


def _as_curve(
    rate: Sequence[float], quality: Sequence[float], label: str
) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rate, dtype=np.float64).ravel()
    q = np.asarray(quality, dtype=np.float64).ravel()
    if r.shape != q.shape:
        raise ValueError(f"{label}: {r.size} rates but {q.size} quality values")
    ok = np.isfinite(r) & np.isfinite(q)
    r, q = r[ok], q[ok]
    if r.size < 2:
        raise ValueError(f"{label}: a BD computation needs at least 2 points, got {r.size}")
    if np.any(r <= 0):
        raise ValueError(f"{label}: rates must be positive")
    return r, q


def _integral_mean(
    x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str, label: str
) -> float:
    """Mean of the interpolant y(x) over [lo, hi]."""
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if method == "cubic":
        deg = min(3, x.size - 1)
        # Centre and scale x for a well-conditioned fit; the integral is invariant.
        mu, sigma = float(np.mean(x)), float(np.std(x)) or 1.0
        coeffs = np.polyfit((x - mu) / sigma, y, deg)
        prim = np.polyint(coeffs)
        a, b = (lo - mu) / sigma, (hi - mu) / sigma
        return float((np.polyval(prim, b) - np.polyval(prim, a)) * sigma / (hi - lo))
    if method == "pchip":
        try:
            from scipy.interpolate import PchipInterpolator
        except ImportError:
            raise LicodecError(
                "PCHIP BD-rates need SciPy: pip install 'licodec[eval]' (or use --method cubic)"
            ) from None

        if np.any(np.diff(x) <= 0):
            raise ValueError(
                f"{label}: PCHIP needs strictly monotone curves (repeated value {x[np.argmin(np.diff(x))]:.4g})"
            )
        return float(PchipInterpolator(x, y, extrapolate=False).integrate(lo, hi) / (hi - lo))
    raise ValueError(f"unknown BD method {method!r} (choose from {', '.join(METHODS)})")


def _overlap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    lo = max(float(a.min()), float(b.min()))
    hi = min(float(a.max()), float(b.max()))
    return lo, hi


def bjontegaard(
    rate_anchor: Sequence[float],
    quality_anchor: Sequence[float],
    rate_test: Sequence[float],
    quality_test: Sequence[float],
    method: str = "cubic",
    warn: bool = True,
) -> BDResult:
    """BD-rate (%) and BD-quality (dB) of the test curve against the anchor.

    Rates are in bpp (any positive unit), qualities in dB. Raises ValueError
    when the curves do not overlap at all; emits :class:`BDOverlapWarning`
    (when ``warn``) and sets ``low_overlap`` when they barely do.
    """
    if method not in METHODS:
        raise ValueError(f"unknown BD method {method!r} (choose from {', '.join(METHODS)})")
    ra, qa = _as_curve(rate_anchor, quality_anchor, "anchor")
    rt, qt = _as_curve(rate_test, quality_test, "test")
    la, lt = np.log(ra), np.log(rt)

    q_lo, q_hi = _overlap(qa, qt)
    r_lo, r_hi = _overlap(la, lt)
    if not (q_hi > q_lo) or not (r_hi > r_lo):
        raise ValueError(
            f"the curves do not overlap (quality {qa.min():.2f}-{qa.max():.2f} vs "
            f"{qt.min():.2f}-{qt.max():.2f} dB, rate {ra.min():.3g}-{ra.max():.3g} vs "
            f"{rt.min():.3g}-{rt.max():.3g} bpp)"
        )

    # BD-rate: log-rate as a function of quality, over the shared quality range.
    mean_a = _integral_mean(qa, la, q_lo, q_hi, method, "anchor")
    mean_t = _integral_mean(qt, lt, q_lo, q_hi, method, "test")
    rate_diff = (math.exp(mean_t - mean_a) - 1.0) * 100.0
    # BD-quality: quality as a function of log-rate, over the shared rate range.
    mean_a = _integral_mean(la, qa, r_lo, r_hi, method, "anchor")
    mean_t = _integral_mean(lt, qt, r_lo, r_hi, method, "test")
    quality_diff = mean_t - mean_a

    def share(q: np.ndarray) -> float:
        span = float(q.max() - q.min())
        return 1.0 if span == 0 else (q_hi - q_lo) / span

    ov_t, ov_a = share(qt), share(qa)

    def rate_share(lr: np.ndarray) -> float:
        span = float(lr.max() - lr.min())
        return 1.0 if span == 0 else (r_hi - r_lo) / span

    reasons = []
    if max(ov_t, ov_a) < MIN_OVERLAP_FRACTION:
        reasons.append(
            f"the shared quality range {q_lo:.2f}-{q_hi:.2f} dB covers only "
            f"{100 * ov_t:.0f}% of the test curve and {100 * ov_a:.0f}% of the anchor"
        )
    eps = 1e-9
    for label, q, lr in (("test", qt, lt), ("anchor", qa, la)):
        nq = int(np.sum((q >= q_lo - eps) & (q <= q_hi + eps)))
        nr = int(np.sum((lr >= r_lo - eps) & (lr <= r_hi + eps)))
        if min(nq, nr) < 2:
            reasons.append(
                f"only {min(nq, nr)} point(s) of the {label} curve lie in the shared range"
            )
    reason = "; ".join(reasons)
    if reason and warn:
        warnings.warn(
            f"BD numbers rest on a small overlap: {reason}", BDOverlapWarning, stacklevel=2
        )
    return BDResult(
        method=method,
        bd_rate=rate_diff,
        bd_quality=quality_diff,
        quality_interval=(q_lo, q_hi),
        rate_interval=(math.exp(r_lo), math.exp(r_hi)),
        overlap_test=ov_t,
        overlap_anchor=ov_a,
        low_overlap=bool(reasons),
        reason=reason,
        rate_overlap_test=rate_share(lt),
        rate_overlap_anchor=rate_share(la),
    )


def bd_rate(
    rate_anchor: Sequence[float],
    quality_anchor: Sequence[float],
    rate_test: Sequence[float],
    quality_test: Sequence[float],
    method: str = "cubic",
) -> float:
    """BD-rate in percent of the test curve against the anchor (negative = fewer bits)."""
    return bjontegaard(rate_anchor, quality_anchor, rate_test, quality_test, method).bd_rate


def bd_quality(
    rate_anchor: Sequence[float],
    quality_anchor: Sequence[float],
    rate_test: Sequence[float],
    quality_test: Sequence[float],
    method: str = "cubic",
) -> float:
    """BD-PSNR (or BD-MS-SSIM-dB) of the test curve against the anchor, in dB."""
    return bjontegaard(rate_anchor, quality_anchor, rate_test, quality_test, method).bd_quality


def bjontegaard_curves(
    anchor: Any, test: Any, metric: str = "psnr", method: str = "cubic", warn: bool = True
) -> BDResult:
    """:func:`bjontegaard` on two :class:`~licodec.eval.results.RDCurve` objects."""
    ra, qa = anchor.points(metric)
    rt, qt = test.points(metric)
    return bjontegaard(ra, qa, rt, qt, method=method, warn=warn)
