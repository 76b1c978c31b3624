"""TCM: the mixed Transformer-CNN codec (Liu et al., CVPR 2023).

Residual down/up-sampling blocks alternate with pairs of parallel
Transformer-CNN mixture blocks; the channel-wise entropy model runs SWAtten
over the mean and scale supports.

Reference:
    J. Liu, H. Sun, J. Katto, "Learned Image Compression with Mixed
    Transformer-CNN Architectures", CVPR 2023. Module names follow the
    authors' ``models/tcm.py`` (jmliu206/LIC_TCM) for strict loading.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch.nn.functional as F
from torch import Tensor, nn

from licodec.entropy.channel_ar import ChannelARModel
from licodec.layers.basic import (
    ResidualBlockUpsample,
    ResidualBlockWithStride,
    conv3x3,
    subpel_conv3x3,
)
from licodec.layers.gated import SWAtten
from licodec.layers.tcm import ConvTransBlock
from licodec.zoo.registry import MS_SSIM_LAMBDAS, TrainRecipe, register_model

__all__ = ["RECIPE", "TCM"]

#: Liu et al.'s training (jmliu206/LIC_TCM ``train.py``): their own MSE λ table, batch 8,
#: Adam 1e-4, MultiStepLR with one step (γ 0.1) late in training.
RECIPE = TrainRecipe(
    lambdas={"mse": (0.0025, 0.0035, 0.0067, 0.013, 0.025, 0.05), "ms-ssim": MS_SSIM_LAMBDAS},
    settings={"batch_size": 8, "schedule": "step", "milestones": [0.9], "gamma": 0.1},
    source="Liu et al., CVPR 2023 (jmliu206/LIC_TCM train.py)",
)


class _SubsampledPointwise(nn.Conv2d):
    """A strided 1x1 conv computed as subsample-then-1x1 (the same function and parameters).

    torch 2.14's CPU kernel for the weight gradient of a strided 1x1 conv with fewer
    than 16 input channels in channels_last layout corrupts the heap (TCM's first skip
    has 3); the subsampled form avoids that kernel.
    """

    def forward(self, x: Tensor) -> Tensor:
        sh, sw = self.stride
        return F.conv2d(x[..., ::sh, ::sw], self.weight, self.bias)


def _down(in_ch: int, out_ch: int) -> ResidualBlockWithStride:
    """The stride-2 residual block with its skip in subsampled form."""
    block = ResidualBlockWithStride(in_ch, out_ch, 2)
    block.skip = _SubsampledPointwise(in_ch, out_ch, 1, stride=2)
    return block


def _ctb_pair(dim: int, head_dim: int, window: int, rates: Sequence[float]) -> list[nn.Module]:
    """A W then an SW mixture block (``depth`` must be even in TCM's config)."""
    return [
        ConvTransBlock(dim, head_dim, window, "W" if i % 2 == 0 else "SW", rates[i])
        for i in range(len(rates))
    ]


class TCM(ChannelARModel):
    """Mixed Transformer-CNN model.

    Args:
        N: half-width of the mixture blocks (64 / 96 / 128 for S / M / L).
        M: channels of ``y`` (320).
        config: mixture blocks per stage (g_a x3, g_s x3): (2,)*6.
        head_dim: head width per stage (8, 16, 32, 32, 16, 8).
        window: window of the main transforms (8); the hyper transforms use
            ``window // 2``.
        num_slices / max_support: entropy model slices (5) and context (5).
        drop_path_rate: stochastic depth over the main blocks (0).
        atten_dim / atten_head_dim: SWAtten width (128) and head width (16).
        slice_hidden: hidden widths of the slice transforms (224, 128).
        z_channels: channels of ``z`` (192).
        num_rates: 0 = fixed rate; n > 0 = variable rate with n operating points
            (gain units, see :class:`~licodec.entropy.ChannelARModel`).
    """

    pad_multiple = 128

    def __init__(
        self,
        N: int = 128,
        M: int = 320,
        config: Sequence[int] = (2, 2, 2, 2, 2, 2),
        head_dim: Sequence[int] = (8, 16, 32, 32, 16, 8),
        window: int = 8,
        num_slices: int = 5,
        max_support: int = 5,
        drop_path_rate: float = 0.0,
        atten_dim: int = 128,
        atten_head_dim: int = 16,
        slice_hidden: tuple[int, ...] = (224, 128),
        z_channels: int = 192,
        num_rates: int = 0,
    ) -> None:
        super().__init__()
        self.N = N
        rates = [r / max(sum(config) - 1, 1) * drop_path_rate for r in range(sum(config))]
        # The authors' code restarts the drop-path index at 0 for every stage.
        r = [rates[: config[i]] for i in range(6)]
        hd = head_dim
        C = 2 * N
        self.g_a = nn.Sequential(
            _down(3, C), *_ctb_pair(N, hd[0], window, r[0]),
            _down(C, C), *_ctb_pair(N, hd[1], window, r[1]),
            _down(C, C), *_ctb_pair(N, hd[2], window, r[2]),
            conv3x3(C, M, stride=2),
        )  # fmt: skip
        self.g_s = nn.Sequential(
            ResidualBlockUpsample(M, C, 2), *_ctb_pair(N, hd[3], window, r[3]),
            ResidualBlockUpsample(C, C, 2), *_ctb_pair(N, hd[4], window, r[4]),
            ResidualBlockUpsample(C, C, 2), *_ctb_pair(N, hd[5], window, r[5]),
            subpel_conv3x3(C, 3, 2),
        )  # fmt: skip
        hyper_rates = [0.0] * config[0]
        hw = window // 2
        self.h_a = nn.Sequential(
            _down(M, C),
            *_ctb_pair(N, min(32, N), hw, hyper_rates),
            conv3x3(C, z_channels, stride=2),
        )

        def hyper_s() -> nn.Sequential:
            return nn.Sequential(
                ResidualBlockUpsample(z_channels, C, 2),
                *_ctb_pair(N, min(32, N), hw, hyper_rates),
                subpel_conv3x3(C, M, 2),
            )

        self.h_mean_s = hyper_s()
        self.h_scale_s = hyper_s()
        self.init_entropy_model(
            M,
            num_slices,
            max_support,
            slice_hidden,
            z_channels,
            support_attention=partial(
                SWAtten, inner=atten_dim, head_dim=atten_head_dim, window=window
            ),
            num_rates=num_rates,
        )


for _name, _n, _count in (("tcm-s", 64, 45.18), ("tcm-m", 96, 59.13), ("tcm-l", 128, 76.57)):
    register_model(
        _name,
        TCM,
        description=f"TCM-{_name[-1].upper()} (N={_n}, M=320, 5 slices), {_count} M parameters",
        paper="Liu et al., CVPR 2023",
        recipe=RECIPE,
        N=_n,
        memory_per_pixel={"tcm-s": 2030, "tcm-m": 3150, "tcm-l": 3490}[_name],
    )
register_model(
    "tcm-lite",
    TCM,
    description="TCM reduced for CPU training (N=12, M=128, 4 slices, window 4, no mixture "
    "blocks at 1/2 resolution, slice transforms 48-32), 2.4 GFLOP per 256x256, variable rate "
    "(qualities 1-6)",
    paper="Liu et al., CVPR 2023; gain units: Cui et al., CVPR 2021",
    recipe=RECIPE,
    N=12,
    M=128,
    config=(0, 2, 2, 2, 2, 0),
    head_dim=(6, 12, 12, 12, 12, 6),
    window=4,
    num_slices=4,
    max_support=4,
    atten_dim=32,
    slice_hidden=(48, 32),
    z_channels=64,
    num_rates=6,
    memory_per_pixel=230,
)
register_model(
    "tcm-tiny",
    TCM,
    description="TCM test config",
    recipe=RECIPE,
    N=8,
    M=20,
    config=(2,) * 6,
    head_dim=(4, 4, 8, 8, 4, 4),
    num_slices=2,
    max_support=2,
    atten_dim=16,
    atten_head_dim=8,
    slice_hidden=(16,),
    z_channels=16,
    memory_per_pixel=390,
)
