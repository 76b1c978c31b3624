"""ELIC: uneven channel groups with a checkerboard context inside each (He et al., CVPR 2022).

``y`` is coded in five groups of 16-16-32-64-192 channels (``M = 320``). Each
group's Gaussian parameters come from a 1x1 "parameter aggregation" network
over three inputs: the hyper-synthesis output (one ``h_s``, ``2N`` channels),
a channel context computed from all the groups decoded before it, and a
spatial context: a checkerboard-masked 5x5 conv over the group's own anchors,
which are decoded first (zero context), the other half of the group second.
No latent residual prediction. The transforms are Cheng et al.'s (CVPR 2020)
with residual bottleneck blocks and simplified attention blocks.

The slice loop, coding, rate gains and portable precision are those of every
family (:class:`~licodec.entropy.channel_ar.ChannelARModel`); this file only
supplies the transforms and the loop's four hooks.

References:
    D. He, Z. Yang, W. Peng, R. Ma, H. Qin, Y. Wang, "ELIC: Efficient Learned
    Image Compression with Unevenly Grouped Space-Channel Contextual Adaptive
    Coding", CVPR 2022. D. He et al., "Checkerboard Context Model for Efficient
    Learned Image Compression", CVPR 2021. Sizes follow CompressAI 1.2.8's
    ``Elic2022Official``, whose state_dict loads through :func:`from_compressai`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from licodec.entropy.channel_ar import ChannelARModel, checkerboard, slice_transform
from licodec.errors import ModelError
from licodec.layers.basic import conv, conv1x1, conv3x3, deconv
from licodec.models.wacnn import RECIPE as _ZOU
from licodec.zoo.registry import MS_SSIM_LAMBDAS, TrainRecipe, register_model

__all__ = ["ELIC", "RECIPE", "from_compressai"]

#: No λ table is published with ELIC for six qualities; the CompressAI / Minnen-Singh
#: table (the one STF and WACNN use) gives comparable operating points. Batch 16, Adam 1e-4.
RECIPE = TrainRecipe(
    lambdas={"mse": _ZOU.lambdas["mse"], "ms-ssim": MS_SSIM_LAMBDAS},
    settings={"batch_size": 16, "schedule": "step", "milestones": [0.9], "gamma": 0.1},
    source="CompressAI's λ table for qualities 1-6; He et al., CVPR 2022 for the model",
)

#: The lite and tiny sizes are meant for CPU steps of 8 crops.
SMALL_RECIPE = RECIPE.with_settings(batch_size=8)


class ResidualBottleneck(nn.Module):
    """1x1 down to half the channels, 3x3, 1x1 back up, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = channels // 2
        self.conv1 = conv1x1(channels, mid)
        self.relu1 = nn.ReLU()
        self.conv2 = conv3x3(mid, mid)
        self.relu2 = nn.ReLU()
        self.conv3 = conv1x1(mid, channels)
        self.skip = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.conv3(self.relu2(self.conv2(self.relu1(self.conv1(x)))))


class _ResidualUnit(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            conv1x1(channels, channels // 2), nn.ReLU(),
            conv3x3(channels // 2, channels // 2), nn.ReLU(),
            conv1x1(channels // 2, channels),
        )  # fmt: skip
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(x + self.conv(x))


class AttentionBlock(nn.Module):
    """Cheng et al.'s simplified attention: a residual trunk gated by a sigmoid mask branch."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_a = nn.Sequential(*(_ResidualUnit(channels) for _ in range(3)))
        self.conv_b = nn.Sequential(
            *(_ResidualUnit(channels) for _ in range(3)), conv1x1(channels, channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_a(x) * torch.sigmoid(self.conv_b(x))


class CheckerboardConv(nn.Conv2d):
    """A conv that sees only the anchors of a checkerboard around each position (mask
    "A": not the centre); its weights outside the mask never matter."""

    mask: Tensor

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 5) -> None:
        super().__init__(in_ch, out_ch, kernel_size, padding=kernel_size // 2)
        # the taps at an odd offset from the centre (an odd kernel's centre has an even
        # index sum): the anchors around a non-anchor
        keep = ~checkerboard(kernel_size, kernel_size)
        self.register_buffer("mask", keep.to(self.weight.dtype)[None, None], persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def _ramp(in_ch: int, out_ch: int, floor_ch: int, layers: int = 3) -> list[int]:
    """Widths falling linearly from ``in_ch`` to ``out_ch`` (rounded down), the hidden
    ones at least ``floor_ch``: ELIC's parameter aggregation."""
    widths = [(in_ch * layers + (out_ch - in_ch) * i) // layers for i in range(layers + 1)]
    return [widths[0], *(max(w, floor_ch) for w in widths[1:-1]), widths[-1]]


class ELIC(ChannelARModel):
    """ELIC with the sizes of CompressAI's ``Elic2022Official`` by default.

    Args:
        N: channels of the transforms and of ``z``.
        M: channels of ``y``; ``groups`` must add up to it.
        groups: channels of each group, coded in order (uneven: small first).
        context_hidden: hidden widths of each channel-context network (224, 128).
        blocks: residual bottleneck blocks per resolution of the transforms (3).
        num_rates: 0 (fixed rate) or the operating points of a variable-rate model.
    """

    entropy_modules = ("h_s", "channel_context", "spatial_context", "param_aggregation")
    checkerboard_passes = True

    def __init__(
        self,
        N: int = 192,
        M: int = 320,
        groups: Sequence[int] = (16, 16, 32, 64, 192),
        context_hidden: Sequence[int] = (224, 128),
        blocks: int = 3,
        num_rates: int = 0,
    ) -> None:
        super().__init__()

        def rbb() -> list[nn.Module]:
            return [ResidualBottleneck(N) for _ in range(blocks)]

        self.g_a = nn.Sequential(
            conv(3, N), *rbb(),
            conv(N, N), *rbb(), AttentionBlock(N),
            conv(N, N), *rbb(),
            conv(N, M), AttentionBlock(M),
        )  # fmt: skip
        self.g_s = nn.Sequential(
            AttentionBlock(M), deconv(M, N), *rbb(),
            deconv(N, N), AttentionBlock(N), *rbb(),
            deconv(N, N), *rbb(),
            deconv(N, 3),
        )  # fmt: skip
        self.h_a = nn.Sequential(
            conv(M, N, kernel_size=3, stride=1), nn.ReLU(),
            conv(N, N), nn.ReLU(),
            conv(N, N),
        )  # fmt: skip
        self.h_s = nn.Sequential(
            deconv(N, N), nn.ReLU(),
            deconv(N, N * 3 // 2), nn.ReLU(),
            deconv(N * 3 // 2, N * 2, kernel_size=3, stride=1),
        )  # fmt: skip
        self.init_latent_codec(M, N, groups, num_rates)
        g = self.groups
        self.channel_context = nn.ModuleDict(
            {
                f"y{k}": slice_transform(sum(g[:k]), context_hidden, g[k] * 2, 5, nn.ReLU)
                for k in range(1, len(g))
            }
        )
        self.spatial_context = nn.ModuleList(CheckerboardConv(c, c * 2) for c in g)
        self.param_aggregation = nn.ModuleList(
            slice_transform(w[0], w[1:-1], w[-1], 1, nn.ReLU)
            for w in (_ramp(c * 2 + (k > 0) * c * 2 + N * 2, c * 2, N * 2) for k, c in enumerate(g))
        )

    # -- the slice loop's hooks ----------------------------------------------------

    def _hyper_synthesis(self, z_hat: Tensor, nets: Any) -> tuple[Tensor, ...]:
        return (nets.h_s(z_hat),)

    def _group_context(
        self, k: int, hyper: tuple[Tensor, ...], decoded: list[Tensor], nets: Any
    ) -> Any:
        channel = nets.channel_context[f"y{k}"](torch.cat(decoded, dim=1)) if k else None
        return hyper[0], channel

    def _group_params(
        self, k: int, ctx: Any, partial: Tensor | None, nets: Any
    ) -> tuple[Tensor, Tensor]:
        hyper, channel = ctx
        c = self.groups[k]
        if partial is None:  # the anchors: no spatial context yet
            spatial = hyper.new_zeros(hyper.shape[0], 2 * c, *hyper.shape[-2:])
        else:
            spatial = nets.spatial_context[k](partial.to(hyper.dtype))
        inputs = [spatial, hyper] if channel is None else [spatial, channel, hyper]
        scales, means = nets.param_aggregation[k](torch.cat(inputs, dim=1)).chunk(2, dim=1)
        return means, scales

    def _group_output(self, k: int, ctx: Any, y_tilde: Tensor, nets: Any) -> Tensor:
        return y_tilde


# -- CompressAI's state_dict ---------------------------------------------------------------

_PREFIXES = (
    ("latent_codec.hyper.entropy_bottleneck.", "entropy_bottleneck."),
    ("latent_codec.hyper.h_a.", "h_a."),
    ("latent_codec.hyper.h_s.", "h_s."),
    ("latent_codec.y.channel_context.", "channel_context."),
)


def from_compressai(state_dict: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Map CompressAI's ``Elic2022Official`` names onto ours (the registry's checkpoint
    filter). Its five per-group Gaussian conditionals must share one table (they do
    after ``update()``); its masks must be the checkerboard."""
    out: dict[str, Tensor] = {}
    tables: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        for old, new in _PREFIXES:
            if key.startswith(old):
                out[new + key[len(old) :]] = value
                break
        else:
            if not key.startswith("latent_codec.y.latent_codec.y"):
                out[key] = value
                continue
            group, _, rest = key[len("latent_codec.y.latent_codec.y") :].partition(".")
            if rest.startswith("context_prediction."):
                name = rest[len("context_prediction.") :]
                if name == "mask":
                    keep = ~checkerboard(value.shape[-2], value.shape[-1])
                    if not torch.equal(value != 0, keep.expand_as(value)):
                        raise ModelError(f"{key} is not a checkerboard mask")
                    continue
                out[f"spatial_context.{group}.{name}"] = value
            elif rest.startswith("entropy_parameters."):
                out[f"param_aggregation.{group}.{rest[len('entropy_parameters.') :]}"] = value
            elif rest.startswith("y.gaussian_conditional."):
                name = rest[len("y.gaussian_conditional.") :]
                if name in tables and not torch.equal(tables[name], value):
                    raise ModelError(
                        f"{key} differs from group 0's: licodec's ELIC codes every group "
                        "with one Gaussian conditional"
                    )
                tables.setdefault(name, value)
            else:
                out[key] = value  # reported by the strict load
    out.update({f"gaussian_conditional.{k}": v for k, v in tables.items()})
    return out


register_model(
    "elic",
    ELIC,
    description="ELIC (N=192, M=320, groups 16-16-32-64-192, checkerboard), 32.07 M parameters",
    paper="He et al., CVPR 2022",
    recipe=RECIPE,
    checkpoint_filter=from_compressai,
    memory_per_pixel=1210,
)
register_model(
    "elic-lite",
    ELIC,
    description="ELIC reduced for CPU training (N=32, M=128, groups 8-8-16-32-64, 1 block per "
    "stage, context 64-48), variable rate (qualities 1-6)",
    paper="He et al., CVPR 2022; gain units: Cui et al., CVPR 2021",
    recipe=SMALL_RECIPE,
    checkpoint_filter=from_compressai,
    N=32,
    M=128,
    groups=(8, 8, 16, 32, 64),
    context_hidden=(64, 48),
    blocks=1,
    num_rates=6,
    memory_per_pixel=190,
)
register_model(
    "elic-tiny",
    ELIC,
    description="ELIC test config",
    recipe=SMALL_RECIPE,
    checkpoint_filter=from_compressai,
    N=16,
    M=40,
    groups=(4, 4, 8, 8, 16),
    context_hidden=(16, 16),
    blocks=1,
    memory_per_pixel=150,
)
