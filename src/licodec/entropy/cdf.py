"""Probability tables -> the integer CDF tables the rANS coder reads.

The coder needs, per table, a cumulative frequency list ``0 = c_0 < c_1 < ...
< c_n = 2**precision``: every symbol (the last one is the escape symbol that
carries the tail mass) must keep a frequency of at least 1, or it could not be
coded at all. The quantization is the classic one of the public ``ryg_rans``
example, which CompressAI 1.2.8 uses; the tables must come out *bit-identical*
to CompressAI's, because the tables are rebuilt on every machine and any
difference desynchronises decoding of every existing file:

1. ``f_i = round_half_away(float32(p_i) * 2**precision)`` (the probabilities are
   float32 there, whatever they were computed in);
2. rescale to the total: ``f_i = floor(2**precision * f_i / sum(f))``, running
   sums, and the last sum forced to ``2**precision`` (the last symbol takes the
   remainder);
3. every symbol left with frequency 0 takes one unit from the symbol with the
   smallest frequency above 1 (the first such symbol on ties).

Step 3 is sequential in the reference; here it is done in closed form for all
tables at once: a donor that gives one unit still is the smallest donor, so
donors are drained down to 1 one at a time in (frequency, position) order, and
``k`` zeros take units from the first donors of that order until ``k`` units
are found.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["pmf_to_quantized_cdf", "pmfs_to_quantized_cdfs"]


def _freqs(pmf: np.ndarray, lengths: np.ndarray, precision: int) -> np.ndarray:
    """Frequencies (int64, rows padded with 0 beyond ``lengths``) after steps 1 and 2."""
    p32 = pmf.astype(np.float32)
    if not np.isfinite(p32).all() or (p32 < 0).any():
        raise ValueError("invalid pmf: non-finite or negative element")
    one = 1 << precision
    # float32 * 2**k is exact, so float64 gives the reference's float32 product;
    # floor(x + 0.5) in float64 is round-half-away-from-zero for these x >= 0.
    f = np.floor(p32.astype(np.float64) * one + 0.5).astype(np.int64)
    n = f.shape[1]
    valid = np.arange(n)[None, :] < lengths[:, None]
    f[~valid] = 0
    total = f.sum(axis=1)
    if (total == 0).any():
        raise ValueError("invalid pmf: at least one element must have a non-zero probability")
    f = (one * f) // total[:, None]
    # The last symbol of each row takes whatever the floors left over.
    last = lengths - 1
    rows = np.arange(f.shape[0])
    f[rows, last] = 0
    f[rows, last] = one - f.sum(axis=1)
    return f


def _fill_zeros(f: np.ndarray, lengths: np.ndarray) -> None:
    """Step 3, in place: give each zero-frequency symbol one unit from the smallest donors."""
    n = f.shape[1]
    valid = np.arange(n)[None, :] < lengths[:, None]
    zeros = ((f == 0) & valid).sum(axis=1)
    if not zeros.any():
        return
    big = np.iinfo(np.int64).max
    donors = np.where(f > 1, f, big)
    # Donor order: by frequency, then by position (stable sort keeps positions ordered).
    order = np.argsort(donors, axis=1, kind="stable")
    sorted_f = np.take_along_axis(donors, order, axis=1)
    capacity = np.where(sorted_f == big, 0, sorted_f - 1)
    before = np.cumsum(capacity, axis=1) - capacity  # units given by the donors ahead
    if (capacity.sum(axis=1) < zeros).any():
        raise ValueError("invalid pmf: too many zero-probability symbols for this precision")
    take = np.clip(zeros[:, None] - before, 0, capacity)
    f[valid & (f == 0)] = 1
    np.put_along_axis(f, order, np.take_along_axis(f, order, axis=1) - take, axis=1)


def pmfs_to_quantized_cdfs(
    pmfs: Tensor | np.ndarray, lengths: Sequence[int] | Tensor | np.ndarray, precision: int = 16
) -> Tensor:
    """Quantized CDFs of several pmfs at once (row ``i`` uses its first ``lengths[i]`` entries).

    Returns an int32 tensor of shape ``(rows, max(lengths) + 1)``: each row is the
    ``lengths[i] + 1`` CDF values, then zeros (the layout of CompressAI's
    ``_quantized_cdf`` buffers, up to their extra trailing column).
    """
    p = pmfs.detach().cpu().numpy() if isinstance(pmfs, Tensor) else np.asarray(pmfs)
    if p.ndim != 2:
        raise ValueError(f"pmfs must be 2-D, got shape {p.shape}")
    ln = np.asarray(lengths.cpu() if isinstance(lengths, Tensor) else lengths, dtype=np.int64)
    if ln.shape != (p.shape[0],) or (ln < 1).any() or (ln > p.shape[1]).any():
        raise ValueError("lengths must give 1..width entries for every row")
    if not 1 <= precision <= 24:
        raise ValueError(f"precision must be in 1..24, got {precision}")
    f = _freqs(p, ln, precision)
    _fill_zeros(f, ln)
    cdf = np.zeros((p.shape[0], p.shape[1] + 1), dtype=np.int64)
    np.cumsum(f, axis=1, out=cdf[:, 1:])
    cdf[np.arange(cdf.shape[1])[None, :] > ln[:, None]] = 0
    return torch.from_numpy(cdf.astype(np.int32))


def pmf_to_quantized_cdf(pmf: Tensor | Sequence[float], precision: int = 16) -> Tensor:
    """Quantized CDF (int32, ``len(pmf) + 1`` values) of one pmf, escape symbol included."""
    p = torch.as_tensor(pmf, dtype=torch.float64).reshape(1, -1)
    return pmfs_to_quantized_cdfs(p, [p.shape[1]], precision)[0]
