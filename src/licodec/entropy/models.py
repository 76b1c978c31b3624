"""licodec's entropy models: the factorized prior and the Gaussian conditional.

Both follow J. Ballé, D. Minnen, S. Singh, S. J. Hwang and N. Johnston,
"Variational image compression with a scale hyperprior", ICLR 2018:

* :class:`EntropyBottleneck` — a per-channel density for ``z`` with no
  conditioning, defined by its cumulative: ``c(x) = sigmoid(f(x))`` with ``f`` a
  small monotone network (softplus weights, ``tanh`` gates); the likelihood of
  a quantized value is ``c(x + 1/2) - c(x - 1/2)``. Three learned quantiles per
  channel (``c = tail/2, 1/2, 1 - tail/2``, fitted by :meth:`~EntropyBottleneck.loss`,
  the "aux loss") give the median, which quantization is centred on, and the
  range the coder's table covers.
* :class:`GaussianConditional` — ``y`` given per-element mean and scale: the
  likelihood is the Gaussian mass of the unit bin, the scale bounded below;
  the coder uses one table per entry of a fixed log-spaced scale table, each
  covering the scale's central ``1 - tail_mass``.

The module, parameter and buffer names and shapes are those of CompressAI
1.2.8's layers, so its checkpoints (the authors' and ours) load unchanged; the
coder tables are built bit-identically to CompressAI's (see
:mod:`licodec.entropy.cdf`), which keeps every existing file decodable. The
entropy coders are in :mod:`licodec.entropy.coder`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from licodec.entropy.cdf import pmfs_to_quantized_cdfs
from licodec.entropy.coder import CODER_RANGE, CoderTables, RangeEncoder, make_decoder
from licodec.layers.basic import LowerBound, lower_bound  # re-exported: the entropy API

__all__ = [
    "EntropyBottleneck",
    "EntropyModel",
    "GaussianConditional",
    "LowerBound",
    "lower_bound",
    "ste_round",
]


def ste_round(x: Tensor) -> Tensor:
    """Round with the identity gradient (straight-through), for training on hard values."""
    return (torch.round(x) - x).detach() + x


#: Buffers whose size follows the learned parameters: resized to the stored size on load.
_SIZED_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length")


class EntropyModel(nn.Module):
    """What both layers share: the coder tables, quantization and the rANS calls.

    ``_quantized_cdf`` (one zero-padded CDF per table), ``_offset`` (the symbol
    of each table's first entry) and ``_cdf_length`` (its entries, the escape
    symbol and the final ``2**precision`` included) are empty until
    ``update()`` builds them.
    """

    _offset: Tensor
    _quantized_cdf: Tensor
    _cdf_length: Tensor

    def __init__(self, likelihood_bound: float = 1e-9, entropy_coder_precision: int = 16) -> None:
        super().__init__()
        self.entropy_coder_precision = int(entropy_coder_precision)
        self.use_likelihood_bound = likelihood_bound > 0
        if self.use_likelihood_bound:
            self.likelihood_lower_bound = LowerBound(likelihood_bound)
        self.register_buffer("_offset", torch.IntTensor())
        self.register_buffer("_quantized_cdf", torch.IntTensor())
        self.register_buffer("_cdf_length", torch.IntTensor())

    _resized_on_load: tuple[str, ...] = _SIZED_BUFFERS

    def _load_from_state_dict(
        self, state_dict: Any, prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # The tables' sizes depend on the parameters, so take the stored sizes.
        for name in self._resized_on_load:
            value = state_dict.get(prefix + name)
            buf = getattr(self, name, None)
            if isinstance(value, Tensor) and isinstance(buf, Tensor) and buf.shape != value.shape:
                setattr(self, name, torch.empty(value.shape, dtype=buf.dtype, device=buf.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def offset(self) -> Tensor:
        return self._offset

    @property
    def quantized_cdf(self) -> Tensor:
        return self._quantized_cdf

    @property
    def cdf_length(self) -> Tensor:
        return self._cdf_length

    def _bound_likelihood(self, likelihood: Tensor) -> Tensor:
        if self.use_likelihood_bound:
            return self.likelihood_lower_bound(likelihood)
        return likelihood

    def quantize(self, inputs: Tensor, mode: str, means: Tensor | None = None) -> Tensor:
        """``noise``: add U(-1/2, 1/2) (training's proxy); ``dequantize``: round around
        ``means`` and add them back; ``symbols``: the rounded integers the coder sees."""
        if mode == "noise":
            return inputs + torch.empty_like(inputs).uniform_(-0.5, 0.5)
        if mode not in ("dequantize", "symbols"):
            raise ValueError(f"invalid quantization mode: {mode!r}")
        outputs = inputs - means if means is not None else inputs.clone()
        outputs = torch.round(outputs)
        if mode == "symbols":
            return outputs.int()
        return outputs + means if means is not None else outputs

    @staticmethod
    def dequantize(
        inputs: Tensor, means: Tensor | None = None, dtype: torch.dtype = torch.float
    ) -> Tensor:
        """Symbols back to values: ``symbols + means`` (in ``means``' dtype)."""
        if means is not None:
            return inputs.type_as(means) + means
        return inputs.type(dtype)

    def coder_tables(self) -> CoderTables:
        """The tables as the entropy coders use them; rebuilt when the buffers change."""
        bufs = (self._quantized_cdf, self._cdf_length, self._offset)
        key = tuple((id(b), b._version, tuple(b.shape)) for b in bufs)
        cached = self.__dict__.get("_coder_tables_cache")
        if cached is not None and cached[0] == key:
            return cached[1]  # type: ignore[no-any-return]
        if any(b.numel() == 0 for b in bufs):
            raise ValueError("entropy coder tables are empty: run update() first")
        if self._quantized_cdf.dim() != 2 or self._offset.dim() != 1 or self._cdf_length.dim() != 1:
            raise ValueError("malformed entropy coder tables")
        tables = CoderTables.from_arrays(*(b.detach().cpu().numpy() for b in bufs))
        self.__dict__["_coder_tables_cache"] = (key, tables)
        return tables

    def compress(self, inputs: Tensor, indexes: Tensor, means: Tensor | None = None) -> list[bytes]:
        """One range-coded string per batch element; ``indexes`` pick each element's table."""
        if inputs.dim() < 2:
            raise ValueError("inputs must have at least 2 dimensions (batch, channels, ...)")
        if inputs.shape != indexes.shape:
            raise ValueError("inputs and indexes must have the same shape")
        symbols = self.quantize(inputs, "symbols", means).cpu().numpy()
        idx = indexes.cpu().numpy()
        tables = self.coder_tables()
        out = []
        for i in range(symbols.shape[0]):
            encoder = RangeEncoder()
            encoder.encode(symbols[i], idx[i], tables)
            out.append(encoder.finish())
        return out

    def decompress(
        self,
        strings: Sequence[bytes],
        indexes: Tensor,
        dtype: torch.dtype = torch.float,
        means: Tensor | None = None,
        coder: str = CODER_RANGE,
    ) -> Tensor:
        """Inverse of :meth:`compress` (values, ``means`` added back); ``coder``: the
        coder that wrote the strings (:mod:`licodec.entropy.coder`)."""
        if not isinstance(strings, (list, tuple)) or len(strings) != indexes.shape[0]:
            raise ValueError("need one string per batch element of indexes")
        if indexes.dim() < 2:
            raise ValueError("indexes must have at least 2 dimensions (batch, channels, ...)")
        tables = self.coder_tables()
        idx = indexes.cpu().numpy()
        out = torch.empty(indexes.shape, dtype=torch.int32)
        for i, s in enumerate(strings):
            values = make_decoder(coder, s).decode(idx[i], tables)
            out[i] = torch.from_numpy(values.astype(np.int32)).reshape(out[i].shape)
        return self.dequantize(out.to(indexes.device), means, dtype)

    def _set_tables(self, pmf: Tensor, tail: Tensor, lengths: Tensor) -> None:
        """Quantize ``pmf`` rows (first ``lengths[i]`` entries) + tail mass into ``_quantized_cdf``.

        Row ``i`` holds its ``lengths[i] + 2`` CDF values, zero-padded to
        ``max(lengths) + 2`` columns (CompressAI's layout).
        """
        n = int(lengths.max())
        rows = torch.zeros(pmf.shape[0], n + 1, dtype=torch.float64)
        rows[:, :n] = pmf[:, :n].detach().to("cpu", torch.float64)
        ln = lengths.to("cpu", torch.long)
        rows[torch.arange(rows.shape[0]), ln] = tail.detach().reshape(-1).to("cpu", torch.float64)
        cdf = pmfs_to_quantized_cdfs(rows, ln + 1, self.entropy_coder_precision)
        self._quantized_cdf = cdf.to(self._quantized_cdf.device)


_OLD_KEY = re.compile(r"^_(?P<kind>matrix|bias|factor|matrices|biases|factors)\.?(?P<i>\d+)$")
_OLD_KIND = {"matrix": "matrices", "bias": "biases", "factor": "factors"}


class EntropyBottleneck(EntropyModel):
    """Factorized prior: a learned, unconditional density per channel (Ballé et al. 2018).

    ``filters`` are the hidden widths of the per-channel cumulative network;
    ``init_scale`` the initial spread of the density; ``tail_mass`` the
    probability left outside the coder's table (coded by the escape symbol).
    """

    quantiles: nn.Parameter
    target: Tensor

    def __init__(
        self,
        channels: int,
        *,
        tail_mass: float = 1e-9,
        init_scale: float = 10,
        filters: tuple[int, ...] = (3, 3, 3, 3),
        likelihood_bound: float = 1e-9,
        entropy_coder_precision: int = 16,
    ) -> None:
        super().__init__(likelihood_bound, entropy_coder_precision)
        self.channels = int(channels)
        self.filters = tuple(int(f) for f in filters)
        self.init_scale = float(init_scale)
        self.tail_mass = float(tail_mass)
        widths = (1, *self.filters, 1)
        # Each of the len(filters)+1 layers scales by the same factor at init, so the
        # whole map starts as a density of spread about init_scale.
        scale = self.init_scale ** (1 / (len(self.filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(self.filters) + 1):
            w = math.log(math.expm1(1 / scale / widths[i + 1]))  # softplus(w) = 1/(scale*width)
            self.matrices.append(
                nn.Parameter(torch.full((self.channels, widths[i + 1], widths[i]), w))
            )
            bias = torch.empty(self.channels, widths[i + 1], 1)
            nn.init.uniform_(bias, -0.5, 0.5)
            self.biases.append(nn.Parameter(bias))
            if i < len(self.filters):
                self.factors.append(nn.Parameter(torch.zeros(self.channels, widths[i + 1], 1)))
        init = torch.tensor([-self.init_scale, 0.0, self.init_scale])
        self.quantiles = nn.Parameter(init.repeat(self.channels, 1, 1))
        # Logits of the three quantiles: sigmoid^-1(tail/2), 0, sigmoid^-1(1 - tail/2).
        t = math.log(2 / self.tail_mass - 1)
        self.register_buffer("target", torch.tensor([-t, 0.0, t]))

    def _load_from_state_dict(
        self, state_dict: Any, prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # Old CompressAI names of the cumulative network (``_matrix0``, ``_biases.0`` ...).
        for key in [k for k in state_dict if k.startswith(prefix)]:
            m = _OLD_KEY.match(key[len(prefix) :])
            if m:
                kind = _OLD_KIND.get(m["kind"], m["kind"])
                state_dict[f"{prefix}{kind}.{m['i']}"] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _get_medians(self) -> Tensor:
        """The per-channel medians, shape (C, 1, 1): quantization is centred on them."""
        return self.quantiles[:, :, 1:2]

    def _logits_cumulative(
        self, inputs: Tensor, stop_gradient: bool, dtype: torch.dtype | None = None
    ) -> Tensor:
        """``f(inputs)`` per channel (inputs (C, 1, N)): the logit of the cumulative.

        Monotone by construction: softplus weights, and gates ``x + tanh(a) tanh(x)``
        with ``|tanh(a)| < 1``. ``dtype``: compute with the parameters cast to it.
        """
        logits = inputs
        for i in range(len(self.filters) + 1):
            matrix, bias = self.matrices[i], self.biases[i]
            if stop_gradient:
                matrix, bias = matrix.detach(), bias.detach()
            if dtype is not None:
                matrix, bias = matrix.to(dtype), bias.to(dtype)
            logits = torch.matmul(F.softplus(matrix), logits) + bias
            if i < len(self.filters):
                factor = self.factors[i].detach() if stop_gradient else self.factors[i]
                if dtype is not None:
                    factor = factor.to(dtype)
                logits = logits + torch.tanh(factor) * torch.tanh(logits)
        return logits

    def _likelihood(
        self, inputs: Tensor, stop_gradient: bool = False, dtype: torch.dtype | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Mass of the unit bin around each input, and the bin edges' logits (lower, upper)."""
        lower = self._logits_cumulative(inputs - 0.5, stop_gradient, dtype)
        upper = self._logits_cumulative(inputs + 0.5, stop_gradient, dtype)
        return torch.sigmoid(upper) - torch.sigmoid(lower), lower, upper

    def forward(self, x: Tensor, training: bool | None = None) -> tuple[Tensor, Tensor]:
        """``(x_hat, likelihoods)``: noisy ``x`` in training, rounded around the medians else."""
        if training is None:
            training = self.training
        perm = (1, 0, *range(2, x.dim()))  # channels first: one density per row
        v = x.permute(*perm).contiguous()
        shape = v.shape
        values = v.reshape(v.shape[0], 1, -1)
        if training:
            outputs = self.quantize(values, "noise")
        else:  # rounded around the medians, with straight-through gradients
            medians = self._get_medians()
            outputs = ste_round(values - medians) + medians
        likelihood = self._bound_likelihood(self._likelihood(outputs)[0])
        outputs = outputs.reshape(shape).permute(*perm).contiguous()
        likelihood = likelihood.reshape(shape).permute(*perm).contiguous()
        return outputs, likelihood

    def loss(self) -> Tensor:
        """The aux loss: distance of the quantiles' logits from their targets."""
        logits = self._logits_cumulative(self.quantiles, stop_gradient=True)
        return torch.abs(logits - self.target).sum()

    @torch.no_grad()
    def _update_quantiles(
        self, radius: float = 1e5, rtol: float = 1e-4, atol: float = 1e-3
    ) -> None:
        """Set the quantiles by bisection on the monotone cumulative (quicker than the aux loss)."""
        shape = (self.channels, 1, 1)
        dev, dt = self.quantiles.device, self.quantiles.dtype
        for k in range(self.target.numel()):
            target = self.target[k]
            lo = torch.full(shape, -radius, device=dev, dtype=dt)
            hi = torch.full(shape, radius, device=dev, dtype=dt)

            def f(t: Tensor) -> Tensor:
                return self._logits_cumulative(t, stop_gradient=True)

            # Targets outside [f(lo), f(hi)] collapse onto that end.
            lo = torch.where(target <= f(hi), lo, hi)
            hi = torch.where(f(lo) <= target, hi, lo)
            while not torch.isclose(lo, hi, rtol=rtol, atol=atol).all():
                mid = (lo + hi) / 2
                fm = f(mid)
                lo = torch.where(fm <= target, mid, lo)
                hi = torch.where(fm >= target, mid, hi)
            self.quantiles[:, :, k] = ((lo + hi) / 2)[:, :, 0]

    def update(
        self, force: bool = False, update_quantiles: bool = False, dtype: torch.dtype | None = None
    ) -> bool:
        """Build the coder tables: one per channel, covering its quantile range around the median.

        Does nothing (returns False) when tables exist, unless ``force``. ``dtype``
        computes the table's probabilities with the parameters cast to it
        (``torch.float64``: tables that do not depend on the CPU's float32 kernels).
        """
        if self._offset.numel() > 0 and not force:
            return False
        if update_quantiles:
            self._update_quantiles()
        with torch.no_grad():
            q = self.quantiles.detach()
            if dtype is not None:
                q = q.to(dtype)
            medians = q[:, 0, 1]
            minima = torch.clamp(torch.ceil(medians - q[:, 0, 0]).int(), min=0)
            maxima = torch.clamp(torch.ceil(q[:, 0, 2] - medians).int(), min=0)
            start = medians - minima
            length = maxima + minima + 1
            n = int(length.max())
            samples = torch.arange(n, device=q.device)[None, :] + start[:, None, None]
            pmf, lower, upper = self._likelihood(samples, stop_gradient=True, dtype=dtype)
            # The escape symbol's mass: below the first sample, above the *last column*
            # (for channels with a shorter range that column lies beyond their table; it is
            # what CompressAI computes, and the tables must equal its tables).
            tail = torch.sigmoid(lower[:, 0, :1]) + torch.sigmoid(-upper[:, 0, -1:])
            self._set_tables(pmf[:, 0, :], tail, length)
        self._offset = (-minima).to(self._offset.device)
        self._cdf_length = (length + 2).to(self._cdf_length.device)
        return True

    @staticmethod
    def _build_indexes(size: Sequence[int]) -> Tensor:
        """Table index of every element of a (B, C, ...) tensor: its channel."""
        c = int(size[1])
        view = [1] * len(size)
        view[1] = -1
        return torch.arange(c, dtype=torch.int32).view(*view).repeat(int(size[0]), 1, *size[2:])

    def _medians_for(self, batch: int, spatial: int) -> Tensor:
        m = self._get_medians().detach().reshape(-1, *([1] * spatial))
        return m.expand(batch, *([-1] * (spatial + 1)))

    def compress(self, x: Tensor) -> list[bytes]:  # type: ignore[override]
        """One string per image of ``x`` (B, C, ...), symbols rounded around the medians."""
        indexes = self._build_indexes(x.shape)
        return super().compress(x, indexes, self._medians_for(x.shape[0], x.dim() - 2))

    def decompress(  # type: ignore[override]
        self, strings: Sequence[bytes], size: Sequence[int], coder: str = CODER_RANGE
    ) -> Tensor:
        """Decode :meth:`compress`'s strings into a (len(strings), C, *size) tensor."""
        indexes = self._build_indexes((len(strings), self._quantized_cdf.shape[0], *size))
        indexes = indexes.to(self._quantized_cdf.device)
        medians = self._medians_for(len(strings), len(size))
        return super().decompress(strings, indexes, medians.dtype, medians, coder)


class GaussianConditional(EntropyModel):
    """Gaussian conditional: likelihood of ``y`` given means and scales (Ballé et al. 2018).

    ``scale_table``: the scales the coder has tables for (or None: set later by
    :meth:`update_scale_table`); ``scale_bound``: the smallest scale used,
    ``tail_mass``: the probability left outside each table.
    """

    scale_table: Tensor
    scale_bound: Tensor

    def __init__(
        self,
        scale_table: Sequence[float] | None,
        *,
        scale_bound: float = 0.11,
        tail_mass: float = 1e-9,
        likelihood_bound: float = 1e-9,
        entropy_coder_precision: int = 16,
    ) -> None:
        super().__init__(likelihood_bound, entropy_coder_precision)
        if scale_table is not None:
            if not isinstance(scale_table, (list, tuple)) or not scale_table:
                raise ValueError("scale_table must be a non-empty list or tuple (or None)")
            if list(scale_table) != sorted(scale_table) or any(s <= 0 for s in scale_table):
                raise ValueError(f"scale_table must be positive and increasing: {scale_table}")
        if scale_bound is None or scale_bound <= 0:
            raise ValueError(f"scale_bound must be positive, got {scale_bound}")
        self.tail_mass = float(tail_mass)
        self.lower_bound_scale = LowerBound(scale_bound)
        self.register_buffer(
            "scale_table", self._prepare_scale_table(scale_table) if scale_table else torch.Tensor()
        )
        self.register_buffer("scale_bound", torch.tensor([float(scale_bound)]))

    _resized_on_load = (*_SIZED_BUFFERS, "scale_table")

    @staticmethod
    def _prepare_scale_table(scale_table: Sequence[float] | Tensor) -> Tensor:
        return torch.tensor([float(s) for s in scale_table], dtype=torch.float32)

    @staticmethod
    def _standardized_cumulative(inputs: Tensor) -> Tensor:
        """Φ(x) = erfc(-x/√2)/2 (erfc keeps the precision of the small tail values)."""
        return 0.5 * torch.erfc(-(2**-0.5) * inputs)

    @staticmethod
    def _standardized_quantile(quantile: float) -> float:
        """Φ⁻¹(quantile)."""
        return float(torch.special.ndtri(torch.tensor(quantile, dtype=torch.float64)))

    def update_scale_table(
        self, scale_table: Sequence[float] | Tensor, force: bool = False
    ) -> bool:
        """Set the scale table and build its coder tables (unless built and not ``force``)."""
        if self._offset.numel() > 0 and not force:
            return False
        self.scale_table = self._prepare_scale_table(scale_table).to(self.scale_table.device)
        self.update()
        return True

    def update(self) -> None:
        """One coder table per scale, symmetric, spanning ``±Φ⁻¹(1 - tail/2)·scale``."""
        if self.scale_table.numel() == 0:
            raise ValueError("no scale table: call update_scale_table() first")
        multiplier = -self._standardized_quantile(self.tail_mass / 2)
        center = torch.ceil(self.scale_table * multiplier).int()
        length = 2 * center + 1
        n = int(length.max())
        samples = torch.abs(torch.arange(n, device=center.device).int() - center[:, None]).float()
        scales = self.scale_table.unsqueeze(1).float()
        upper = self._standardized_cumulative((0.5 - samples) / scales)
        lower = self._standardized_cumulative((-0.5 - samples) / scales)
        # Both tails (symmetric): twice the mass below the first entry.
        self._set_tables(upper - lower, 2 * lower[:, :1], length)
        self._offset = -center
        self._cdf_length = length + 2

    def _likelihood(self, inputs: Tensor, scales: Tensor, means: Tensor | None = None) -> Tensor:
        """Gaussian mass of the unit bin around ``inputs`` (scales bounded below)."""
        values = torch.abs(inputs - means if means is not None else inputs)
        scales = self.lower_bound_scale(scales)
        upper = self._standardized_cumulative((0.5 - values) / scales)
        lower = self._standardized_cumulative((-0.5 - values) / scales)
        return upper - lower

    def likelihood(self, values: Tensor, scales: Tensor, means: Tensor | None = None) -> Tensor:
        """The (bounded) likelihood of ``values`` as they are: no quantization, so
        gradients flow through whatever rounding the caller applied."""
        return self._bound_likelihood(self._likelihood(values, scales, means))

    def forward(
        self,
        inputs: Tensor,
        scales: Tensor,
        means: Tensor | None = None,
        training: bool | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``(y_hat, likelihoods)``: noisy in training, rounded around ``means`` else."""
        if training is None:
            training = self.training
        outputs = self.quantize(inputs, "noise" if training else "dequantize", means)
        return outputs, self.likelihood(outputs, scales, means)

    def build_indexes(self, scales: Tensor) -> Tensor:
        """Table of each element: the first table scale at or above its (bounded) scale."""
        scales = self.lower_bound_scale(scales)
        table = self.scale_table[:-1].to(scales.dtype)
        return torch.bucketize(scales, table).int()
