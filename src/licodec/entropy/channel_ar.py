"""The channel-wise autoregressive latent codec shared by WACNN, STF and TCM.

A hyperprior (factorized prior on ``z``) predicts per-element means and
scales of ``y``; ``y`` is cut into slices along channels, and each slice's
Gaussian parameters are also conditioned on the already decoded slices
(at most ``max_support`` of them: always the *first* ones, as in the authors'
code). Latent residual prediction adds ``0.5 * tanh(lrp(...))`` to every
decoded slice. TCM additionally runs an attention module (SWAtten) over the
mean and scale supports.

The slice loop is written once (:meth:`ChannelARModel._slice_loop`); training,
``compress`` and ``decompress`` differ only in how one slice is quantized, so
the encoder and the decoder cannot drift apart.

``portable=True`` computes everything that decides the entropy coder's
tables (hyper-synthesis, slice transforms, support attention, LRP) in float64.
Float32 results differ by a few ulps between CPU instruction sets and torch
builds, and one scale index that lands on the other side of a table boundary
desynchronises the entropy decoder for the rest of the stream; in float64 those
differences are about 10^9 times smaller, so a file coded on one machine
decodes on another. Both sides must use the same mode (the container records
it). The analysis and synthesis transforms stay float32 in both modes. The copy
is kept by :mod:`licodec.entropy.portable`.

With ``num_rates > 0`` the codec is variable-rate: per-rate channel gains
scale ``y`` before quantization and undo it before synthesis (and likewise
for ``z``), so one set of weights serves every rate; ``rate`` then selects
the operating point (:mod:`licodec.entropy.gains`) in :meth:`~ChannelARModel.forward`,
:meth:`~ChannelARModel.compress` and :meth:`~ChannelARModel.decompress`.

References:
    D. Minnen and S. Singh, "Channel-wise autoregressive entropy models for
    learned image compression", ICIP 2020.
    Z. Cui et al., "Asymmetric gained deep image compression with continuous
    rate adaptation", CVPR 2021 (the gain units).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from licodec.entropy.coder import CODER_RANGE, CoderTables, RangeEncoder, make_decoder
from licodec.entropy.contract import Coded
from licodec.entropy.gains import Gains, gains_of, retarget, spread, times
from licodec.entropy.models import EntropyBottleneck, GaussianConditional, ste_round
from licodec.entropy.portable import Nets, clear_cache, entropy_nets
from licodec.layers.deterministic import ThreadInvariant

__all__ = ["ChannelARModel", "checkerboard", "get_scale_table", "slice_transform"]


def get_scale_table(lo: float = 0.11, hi: float = 256.0, levels: int = 64) -> Tensor:
    """Log-spaced Gaussian scales for the coder's CDF tables (CompressAI's default)."""
    return torch.exp(
        torch.linspace(torch.log(torch.tensor(lo)), torch.log(torch.tensor(hi)), levels)
    )


def conv(in_ch: int, out_ch: int, kernel_size: int = 5, stride: int = 2) -> nn.Conv2d:
    """A ``kernel_size`` conv with "same" padding (the authors' ``conv`` helper)."""
    return nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2)


def slice_transform(
    in_ch: int,
    hidden: Sequence[int],
    out_ch: int,
    kernel_size: int = 3,
    act: Callable[[], nn.Module] = nn.GELU,
) -> nn.Sequential:
    """Stride-1 convs ``in -> hidden... -> out`` with ``act`` in between.

    The mean, scale and LRP transforms of WACNN, STF and TCM have this form (3x3,
    GELU), and so have ELIC's channel contexts (5x5, ReLU) and parameter
    aggregation (1x1, ReLU); only the widths differ.
    """
    widths = [in_ch, *hidden, out_ch]
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        if i:
            layers.append(act())
        layers.append(conv(widths[i], widths[i + 1], kernel_size=kernel_size, stride=1))
    return nn.Sequential(*layers)


#: ``step(k, mu, sigma, mask, partial)``: quantize group ``k`` where ``mask`` (None: all of
#: it) and return it, the other positions taken from ``partial`` (zeros when None).
SliceStep = Callable[[int, Tensor, Tensor, "Tensor | None", "Tensor | None"], Tensor]


def _merge(new: Tensor, mask: Tensor | None, partial: Tensor | None) -> Tensor:
    """``new`` where ``mask`` (everywhere when None), elsewhere ``partial`` (or zeros)."""
    if mask is None:
        return new
    return torch.where(mask, new, torch.zeros_like(new) if partial is None else partial)


def _crc(t: Tensor, crc: int) -> int:
    return zlib.crc32(t.detach().to("cpu", torch.int32).contiguous().numpy().tobytes(), crc)


def checkerboard(h: int, w: int, device: torch.device | None = None) -> Tensor:
    """The anchors of a checkerboard context: True where ``row + col`` is even (He et al.,
    CVPR 2021; CompressAI's ``anchor_parity="even"``)."""
    r = torch.arange(h, device=device)[:, None]
    c = torch.arange(w, device=device)[None, :]
    return (r + c) % 2 == 0


class ChannelARModel(nn.Module):
    """Base class: a model = analysis/synthesis transforms + this latent codec.

    Subclasses build ``h_a``, ``h_mean_s``, ``h_scale_s`` and their analysis
    and synthesis transforms, then call :meth:`init_entropy_model`. Module
    names follow the authors' checkpoints (``cc_mean_transforms``,
    ``lrp_transforms``, ``atten_mean``, ``entropy_bottleneck`` ...).

    That is Minnen & Singh's channel-conditional context with LRP. Another
    context (ELIC's uneven groups with a checkerboard inside each) overrides
    the four hooks of the slice loop (:meth:`_hyper_synthesis`,
    :meth:`_group_context`, :meth:`_group_params`, :meth:`_group_output`),
    sets :attr:`groups` and :attr:`checkerboard_passes`, declares its modules
    in :attr:`entropy_modules` and calls :meth:`init_latent_codec`; the loop,
    coding, rate gains and portable precision are shared.

    Inputs of any size are padded (zeros, centred, as the authors' evaluation
    does) to a multiple of :attr:`pad_multiple` and cropped back.
    """

    #: Input sides are padded to a multiple of this.
    pad_multiple: int = 64
    #: Ratio of input size to ``y`` size.
    y_stride: int = 16
    #: The modules whose outputs pick the coder's tables: run in float64 when portable.
    entropy_modules: tuple[str, ...] = (
        "h_mean_s",
        "h_scale_s",
        "cc_mean_transforms",
        "cc_scale_transforms",
        "lrp_transforms",
        "atten_mean",
        "atten_scale",
    )
    #: Whether each group is coded in two spatial passes, checkerboard anchors first.
    checkerboard_passes: bool = False
    #: Channels of each group (slice) of ``y``, coded in this order.
    groups: list[int]
    g_a: nn.Module
    g_s: nn.Module
    h_a: nn.Module
    h_mean_s: nn.Module
    h_scale_s: nn.Module

    def init_latent_codec(
        self, M: int, z_channels: int, groups: Sequence[int], num_rates: int = 0
    ) -> None:
        """The parts every context shares: the factorized prior on ``z``, the Gaussian
        conditional, the channel groups of ``y`` and (``num_rates > 0``) the rate gains."""
        if sum(groups) != M or min(groups) < 1:
            raise ValueError(f"groups {list(groups)} do not split M={M} channels")
        self.M = M
        self.groups = [int(g) for g in groups]
        self.entropy_bottleneck = EntropyBottleneck(z_channels)
        self.gaussian_conditional = GaussianConditional(None)
        self.num_rates = int(num_rates)
        if self.num_rates < 0:
            raise ValueError(f"num_rates must be >= 0, got {num_rates}")
        if self.num_rates:
            # Log-gains: zeros = identity, so fixed-rate weights are a valid start.
            self.gain_y = nn.Parameter(torch.zeros(self.num_rates, M))
            self.inv_gain_y = nn.Parameter(torch.zeros(self.num_rates, M))
            self.gain_z = nn.Parameter(torch.zeros(self.num_rates, z_channels))
            self.inv_gain_z = nn.Parameter(torch.zeros(self.num_rates, z_channels))

    @property
    def step_divisor(self) -> int:
        """``y``'s symbols over those of the largest coding step, rounded down: the
        decoder's memory limits (:mod:`licodec.codec.limits`) size one step by it."""
        passes = 2 if self.checkerboard_passes else 1
        return max(1, self.M * passes // max(self.groups))

    def init_entropy_model(
        self,
        M: int,
        num_slices: int,
        max_support: int,
        hidden: Sequence[int],
        z_channels: int = 192,
        support_attention: Callable[[int], nn.Module] | None = None,
        num_rates: int = 0,
    ) -> None:
        """Create the slice transforms, the entropy bottleneck and the Gaussian conditional.

        Args:
            M: channels of ``y``.
            num_slices: number of equal channel slices.
            max_support: how many decoded slices condition the next ones.
            hidden: hidden widths of the mean/scale/LRP transforms.
            z_channels: channels of ``z``.
            support_attention: builds a module applied to each slice's
                support (TCM's SWAtten), given its channel count.
            num_rates: 0 for a fixed-rate model; otherwise the number of
                operating points of a variable-rate one (gain units).
        """
        if M % num_slices:
            raise ValueError(f"M={M} is not divisible by num_slices={num_slices}")
        self.num_slices = num_slices
        self.max_support = max_support
        width = M // num_slices
        self.slice_width = width

        def cc_in(i: int) -> int:
            return M + width * min(i, max_support)

        self.cc_mean_transforms = nn.ModuleList(
            slice_transform(cc_in(i), hidden, width) for i in range(num_slices)
        )
        self.cc_scale_transforms = nn.ModuleList(
            slice_transform(cc_in(i), hidden, width) for i in range(num_slices)
        )
        self.lrp_transforms = nn.ModuleList(
            slice_transform(M + width * min(i + 1, max_support + 1), hidden, width)
            for i in range(num_slices)
        )
        self.atten_mean: nn.ModuleList | None = None
        self.atten_scale: nn.ModuleList | None = None
        if support_attention is not None:
            self.atten_mean = nn.ModuleList(
                nn.Sequential(support_attention(cc_in(i))) for i in range(num_slices)
            )
            self.atten_scale = nn.ModuleList(
                nn.Sequential(support_attention(cc_in(i))) for i in range(num_slices)
            )
        self.init_latent_codec(M, z_channels, [width] * num_slices, num_rates)

    # -- variable rate ----------------------------------------------------------

    def _gain_tables(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.gain_y, self.inv_gain_y, self.gain_z, self.inv_gain_z

    def init_rate_gains(self, lambdas: Sequence[float], reference: float) -> None:
        """Spread the ``y`` gains as ``sqrt(λ_r / reference)`` (:func:`~licodec.entropy.gains.spread`)."""
        spread(self.gain_y, self.inv_gain_y, lambdas, reference)

    def retarget_rates(self, old: Sequence[float], new: Sequence[float]) -> None:
        """Move the rates from λs ``old`` to λs ``new`` (:func:`~licodec.entropy.gains.retarget`)."""
        retarget(self._gain_tables(), old, new)

    def _gains(self, rate: float | Tensor | None, batch: int) -> Gains:
        """The gains of ``rate`` for a batch of ``batch`` images (:func:`~licodec.entropy.gains.gains_of`)."""
        tables = self._gain_tables() if self.num_rates else ()
        return gains_of(tables, self.num_rates, rate, batch)

    # The three places the gains act; forward, compress and decompress share them.
    def _latents(self, xp: Tensor, g: Gains) -> tuple[Tensor, Tensor]:
        y = times(self.analysis(xp), g.y)
        return y, times(self.h_a(y), g.z)

    def _hyper_params(self, z_hat: Tensor, g: Gains, nets: Nets) -> tuple[Tensor, ...]:
        if nets.dtype is not None:  # every step in float64, the gain's exp included
            z_hat = z_hat.to(nets.dtype)
        return self._hyper_synthesis(times(z_hat, g.inv_z), nets)

    def _hyper_synthesis(self, z_hat: Tensor, nets: Nets) -> tuple[Tensor, ...]:
        """What the hyper-synthesis makes of ``z_hat`` (the slice loop's ``hyper``): here
        the means and the scales of ``y``, from two networks."""
        return nets.h_mean_s(z_hat), nets.h_scale_s(z_hat)

    def _reconstruct(self, y_hat: Tensor, g: Gains, nets: Nets) -> Tensor:
        if nets.dtype is not None:  # back to the synthesis transform's own precision
            y_hat = y_hat.to(self.entropy_bottleneck.quantiles.dtype)
        if torch.is_grad_enabled() or y_hat.device.type != "cpu":
            return self.synthesis(times(y_hat, g.inv_y))
        # Coding: the decoded pixels (and the encoder's reconstruction) must not depend on
        # the thread count (layers/deterministic.py says which kernels would make them).
        with ThreadInvariant():
            return self.synthesis(times(y_hat, g.inv_y))

    # -- precision of the entropy parameters ------------------------------------

    def _nets(self, portable: bool) -> Nets:
        """The declared entropy-parameter modules: ours, or (portable) their float64 copy
        (:func:`~licodec.entropy.portable.entropy_nets`)."""
        return entropy_nets(self, self.entropy_modules, portable)

    def clear_portable_cache(self) -> None:
        """Drop the float64 copy of :meth:`_nets`.

        It is rebuilt on the next portable call. ``update()``, ``train()`` and
        ``load_state_dict()`` call this; call it yourself after changing weights
        through ``.data`` (which in-place version counters do not see).
        """
        clear_cache(self)

    def train(self, mode: bool = True) -> ChannelARModel:
        self.clear_portable_cache()
        return super().train(mode)

    def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:
        self.clear_portable_cache()
        return super().load_state_dict(*args, **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        clear_cache(state)  # deepcopy / pickle: rebuilt on demand
        return state

    # -- transforms supplied by the model -----------------------------------

    def analysis(self, x: Tensor) -> Tensor:
        """Image (padded) -> y."""
        return self.g_a(x)

    def synthesis(self, y_hat: Tensor) -> Tensor:
        """y_hat -> image (padded, unclamped)."""
        return self.g_s(y_hat)

    # -- padding ------------------------------------------------------------

    def pads_for(self, size: Sequence[int]) -> tuple[int, int, int, int]:
        """(left, right, top, bottom) zeros that pad an input of ``size`` (H, W) to the
        pad multiple, centred as the authors' evaluation does: the one place that says so."""
        p = self.pad_multiple
        dh, dw = (-int(size[0])) % p, (-int(size[1])) % p
        return (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2)

    def _pad(self, x: Tensor) -> tuple[Tensor, tuple[int, int, int, int]]:
        h, w = x.shape[-2:]
        if h < 1 or w < 1:
            raise ValueError(f"input must be at least 1x1, got {h}x{w}")
        pads = self.pads_for((h, w))
        return (F.pad(x, pads) if any(pads) else x), pads

    @staticmethod
    def _crop(x: Tensor, size: tuple[int, int], pads: tuple[int, int, int, int]) -> Tensor:
        left, _, top, _ = pads
        return x[..., top : top + size[0], left : left + size[1]]

    # -- the slice loop -------------------------------------------------------

    def _slice_loop(
        self,
        hyper: tuple[Tensor, ...],
        y_size: Sequence[int],
        step: SliceStep,
        nets: Nets,
    ) -> Tensor:
        """Run every group: predict (mu, sigma), quantize via ``step``, finish it.

        ``step(k, mu, sigma, mask, partial)`` returns the quantized group
        ``round(y_k - mu) + mu`` where ``mask`` is True (training:
        straight-through; compress: symbols recorded; decompress: symbols
        decoded). With :attr:`checkerboard_passes` each group takes two passes
        (the anchors, then the rest given them), else one (mask None). ``nets``
        supplies the declared modules (see :meth:`_nets`).
        """
        h, w = int(y_size[0]), int(y_size[1])
        masks: list[Tensor | None] = [None]
        if self.checkerboard_passes:
            anchors = checkerboard(h, w, hyper[0].device)
            masks = [anchors, ~anchors]
        decoded: list[Tensor] = []
        for k in range(len(self.groups)):
            ctx = self._group_context(k, hyper, decoded, nets)
            partial: Tensor | None = None
            for mask in masks:
                mu, sigma = self._group_params(k, ctx, partial, nets)
                partial = step(k, mu[:, :, :h, :w], sigma[:, :, :h, :w], mask, partial)
            assert partial is not None
            decoded.append(self._group_output(k, ctx, partial, nets))
        return torch.cat(decoded, dim=1)

    # The hooks of the slice loop: Minnen & Singh's channel-conditional context with LRP.
    def _group_context(
        self, k: int, hyper: tuple[Tensor, ...], decoded: list[Tensor], nets: Nets
    ) -> Any:
        """What group ``k``'s parameters depend on besides its own pixels: here the
        hyper means and scales with the first ``max_support`` decoded slices."""
        support = decoded[: self.max_support]
        mean_in = torch.cat([hyper[0], *support], dim=1)
        scale_in = torch.cat([hyper[1], *support], dim=1)
        if nets.atten_mean is not None and nets.atten_scale is not None:
            mean_in = nets.atten_mean[k](mean_in)
            scale_in = nets.atten_scale[k](scale_in)
        return mean_in, scale_in

    def _group_params(
        self, k: int, ctx: Any, partial: Tensor | None, nets: Nets
    ) -> tuple[Tensor, Tensor]:
        """(mu, sigma) of group ``k``; ``partial``: its pixels decoded in earlier passes."""
        return nets.cc_mean_transforms[k](ctx[0]), nets.cc_scale_transforms[k](ctx[1])

    def _group_output(self, k: int, ctx: Any, y_tilde: Tensor, nets: Nets) -> Tensor:
        """The decoded group as the rest of the model sees it: here with LRP added."""
        lrp = nets.lrp_transforms[k](torch.cat([ctx[0], y_tilde], dim=1))
        return y_tilde + 0.5 * torch.tanh(lrp)

    def scale_indexes(self, sigma: Tensor) -> Tensor:
        """Coder table index of each scale: how many table entries are below it.

        Equal to ``GaussianConditional.build_indexes`` but one ``bucketize``
        instead of 126 elementwise passes (which dominated decode time).
        """
        gc = self.gaussian_conditional
        table = gc.scale_table[:-1].to(sigma.dtype)
        # contiguous: bucketize copies (and warns about) a strided input, e.g. a tile's slice
        return torch.bucketize(gc.lower_bound_scale(sigma).contiguous(), table).int()

    def _z_medians(self) -> Tensor:
        return self.entropy_bottleneck._get_medians()

    def _z_medians_like(self, z: Tensor) -> Tensor:
        return self.entropy_bottleneck._medians_for(z.shape[0], z.dim() - 2)

    def latents(self, x: Tensor, rate: float | None = None) -> tuple[Tensor, Tensor]:
        """The ``(y, z)`` that :meth:`compress` would code for ``x`` (the start of a refinement)."""
        xp, _ = self._pad(x)
        return self._latents(xp, self._gains(rate, x.shape[0]))

    # -- the CompressAI model contract (forward, compress, decompress, update) ------

    def forward(
        self,
        x: Tensor,
        rate: float | Tensor | None = None,
        portable: bool = False,
        latents: tuple[Tensor, Tensor] | None = None,
        rounding: Callable[[Tensor], Tensor] | None = None,
    ) -> dict[str, Any]:
        """Reconstruction (unclamped) and likelihoods of ``y`` and ``z``.

        ``rate``: the operating point of a variable-rate model, one for the
        batch or one per image (a float between trained rates interpolates
        them). ``portable``: compute the entropy parameters as
        ``compress(..., portable=True)`` does (eval mode only). ``latents``:
        ``(y, z)`` to use instead of the analysis transforms' (the encoder's
        refinement, :mod:`licodec.entropy.refine`). In eval mode the
        likelihoods are those of the rounded latents, with straight-through
        gradients; ``rounding`` (eval mode) replaces that rounding of
        ``y - mu`` (the refinement's annealed soft rounding).
        """
        size = (x.shape[-2], x.shape[-1])
        gains = self._gains(rate, x.shape[0])
        xp, pads = self._pad(x)
        y, z = self._latents(xp, gains) if latents is None else latents
        _, z_likelihoods = self.entropy_bottleneck(z)
        medians = self._z_medians()
        z_hat = ste_round(z - medians) + medians
        nets = self._nets(portable)
        hyper = self._hyper_params(z_hat, gains, nets)

        y_slices = y.split(self.groups, dim=1)
        y_likelihoods: list[Tensor] = []
        gc = self.gaussian_conditional

        round_y = ste_round if rounding is None or self.training else rounding

        def step(
            k: int, mu: Tensor, sigma: Tensor, mask: Tensor | None, partial: Tensor | None
        ) -> Tensor:
            y_tilde = round_y(y_slices[k] - mu) + mu
            if self.training:
                _, lik = gc(y_slices[k], sigma, mu)
            else:
                lik = gc.likelihood(y_tilde, sigma, mu)
            lik = lik if nets.dtype is None else lik.float()
            if mask is None:
                y_likelihoods.append(lik)
                return y_tilde
            if partial is None:  # the first pass of the group
                y_likelihoods.append(torch.where(mask, lik, torch.ones_like(lik)))
                return torch.where(mask, y_tilde, torch.zeros_like(y_tilde))
            y_likelihoods[k] = torch.where(mask, lik, y_likelihoods[k])
            return torch.where(mask, y_tilde, partial)

        y_hat = self._slice_loop(hyper, y.shape[-2:], step, nets)
        x_hat = self._crop(self._reconstruct(y_hat, gains, nets), size, pads)
        return {
            "x_hat": x_hat,
            "likelihoods": {"y": torch.cat(y_likelihoods, dim=1), "z": z_likelihoods},
        }

    def _coder_tables(self) -> CoderTables:
        gc = self.gaussian_conditional
        if gc._quantized_cdf.numel() == 0 or self.entropy_bottleneck._quantized_cdf.numel() == 0:
            raise RuntimeError(
                "entropy coder tables are empty: call model.update(force=True) first"
            )
        return gc.coder_tables()

    @torch.no_grad()
    def compress(
        self,
        x: Tensor,
        rate: float | None = None,
        portable: bool = False,
        reconstruct: bool = False,
        latents: tuple[Tensor, Tensor] | None = None,
    ) -> Coded:
        """Entropy-code ``x``: one y stream for the batch, one z stream per image.

        Returns a :class:`~licodec.entropy.contract.Coded` (also a mapping with
        CompressAI's keys): the streams, the shapes and ``latent_crc``, a CRC32 of
        every coded symbol and its table index, which :meth:`decompress` recomputes, so a decoder whose entropy parameters came
        out differently is detected instead of producing a garbled image. With
        ``reconstruct=True`` also ``x_hat``, exactly what :meth:`decompress`
        will return (without running the entropy decoder). ``latents``: code
        these ``(y, z)`` instead of the analysis transforms' (a refined pair
        from :mod:`licodec.entropy.refine`; the decoder needs nothing else).
        """
        size = (x.shape[-2], x.shape[-1])
        gains = self._gains(rate, x.shape[0])
        tables = self._coder_tables()
        xp, pads = self._pad(x)
        y, z = self._latents(xp, gains) if latents is None else latents
        eb = self.entropy_bottleneck
        z_strings = eb.compress(z)
        # what the decoder will decode (the symbols plus the medians), without decoding
        z_hat = eb.dequantize(
            eb.quantize(z, "symbols", self._z_medians_like(z)), self._z_medians_like(z)
        )
        nets = self._nets(portable)
        hyper = self._hyper_params(z_hat, gains, nets)

        gc = self.gaussian_conditional
        y_slices = y.split(self.groups, dim=1)
        encoder = RangeEncoder()
        crc = 0

        def step(
            k: int, mu: Tensor, sigma: Tensor, mask: Tensor | None, partial: Tensor | None
        ) -> Tensor:
            nonlocal crc
            q = torch.round(y_slices[k] - mu).int()  # as forward's ste_round, in mu's dtype
            idx = self.scale_indexes(sigma)
            coded_q, coded_idx = (q, idx) if mask is None else (q[..., mask], idx[..., mask])
            crc = _crc(coded_idx, _crc(coded_q, crc))
            encoder.encode(coded_q.cpu().numpy(), coded_idx.cpu().numpy(), tables)
            return _merge(gc.dequantize(q, mu), mask, partial)

        y_hat = self._slice_loop(hyper, y.shape[-2:], step, nets)
        x_hat = None
        if reconstruct:
            x_hat = self._crop(self._reconstruct(y_hat, gains, nets).clamp_(0, 1), size, pads)
        return Coded(
            [[encoder.finish()], z_strings],
            (int(z.shape[-2]), int(z.shape[-1])),
            (int(size[0]), int(size[1])),
            crc,
            portable,
            x_hat,
        )

    @torch.no_grad()
    def decompress(
        self,
        strings: Sequence[Sequence[bytes]],
        shape: Sequence[int],
        size: Sequence[int] | None = None,
        rate: int | None = None,
        portable: bool = False,
        latent_crc: int | None = None,
        x_hat: Tensor | None = None,
        coder: str = CODER_RANGE,
    ) -> dict[str, Any]:
        """Decode what :meth:`compress` produced; ``size`` crops to the original image.

        ``portable`` must be what the encoder used. Returns ``x_hat`` and the
        ``latent_crc`` of the decoded symbols; given the encoder's ``latent_crc``
        (``decompress(**compress(x))`` passes it, and ``portable``), a mismatch
        raises ValueError. ``x_hat`` is ignored (so that the output of
        ``compress(..., reconstruct=True)`` can be passed on as it is). ``coder``:
        the entropy coder that wrote the streams (CompressAI's rANS for files of
        formats 1-3, see :mod:`licodec.entropy.coder`).
        """
        if len(strings) != 2 or len(strings[0]) != 1:
            raise ValueError("expected strings = [[y_stream], [z_stream per image]]")
        gains = self._gains(rate, len(strings[1]))
        tables = self._coder_tables()
        z_hat = self.entropy_bottleneck.decompress(list(strings[1]), tuple(shape), coder)
        nets = self._nets(portable)
        hyper = self._hyper_params(z_hat, gains, nets)
        y_size = (z_hat.shape[-2] * 4, z_hat.shape[-1] * 4)

        gc = self.gaussian_conditional
        decoder = make_decoder(coder, strings[0][0])
        crc = 0

        def step(
            k: int, mu: Tensor, sigma: Tensor, mask: Tensor | None, partial: Tensor | None
        ) -> Tensor:
            nonlocal crc
            idx = self.scale_indexes(sigma)
            coded_idx = idx if mask is None else idx[..., mask]
            rv = decoder.decode(coded_idx.cpu().numpy(), tables).astype(np.int32)
            coded_q = torch.from_numpy(rv).to(mu.device).reshape(coded_idx.shape)
            crc = _crc(coded_idx, _crc(coded_q, crc))
            if mask is None:
                q = coded_q
            else:
                q = torch.zeros_like(idx)
                q[..., mask] = coded_q
            return _merge(gc.dequantize(q, mu), mask, partial)

        y_hat = self._slice_loop(hyper, y_size, step, nets)
        if latent_crc is not None and crc != latent_crc:
            raise ValueError(
                "decoded latents differ from the encoder's (latent_crc mismatch): the streams "
                "were altered, or the encoder computed its entropy parameters differently "
                "(another platform without portable=True)"
            )
        x_hat = self._reconstruct(y_hat, gains, nets).clamp_(0, 1)
        if size is not None:
            hw = (int(size[0]), int(size[1]))
            x_hat = self._crop(x_hat, hw, self.pads_for(hw))
        return {"x_hat": x_hat, "latent_crc": crc}

    def aux_loss(self) -> Tensor:
        """The entropy bottleneck's quantile loss (trained by its own optimizer)."""
        return self.entropy_bottleneck.loss()

    def update(
        self, scale_table: Tensor | None = None, force: bool = False, update_quantiles: bool = False
    ) -> bool:
        """Build the coder's CDF tables (needed once after training or loading).

        The tables are rebuilt on every machine, so they must not depend on its
        float kernels: built from the parameters' float32, the ``z`` tables differed
        between AVX-512 and SSE kernels by enough to move one rounding of the
        quantized CDF (and a file then decoded to garbage). They are built from the
        entropy bottleneck's parameters cast to float64 instead. Returns whether
        any table was (re)built.
        """
        self.clear_portable_cache()
        eb, gc = self.entropy_bottleneck, self.gaussian_conditional
        eb_updated = eb.update(force=force, update_quantiles=update_quantiles, dtype=torch.float64)
        gc_updated = gc.update_scale_table(
            scale_table if scale_table is not None else get_scale_table(), force=force
        )
        if gc_updated and not eb_updated:  # as before: any rebuild refreshes the z tables too
            eb.update(force=True, dtype=torch.float64)
        return eb_updated or gc_updated

    def latent_size(self, size: Sequence[int]) -> tuple[int, int]:
        """``y``'s spatial size for an input of ``size`` (after padding)."""
        p, s = self.pad_multiple, self.y_stride
        return (-(-int(size[0]) // p) * p // s, -(-int(size[1]) // p) * p // s)
