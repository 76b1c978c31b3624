"""STF: the Symmetrical TransFormer codec (Zou et al., CVPR 2022).

Swin stages with patch merging on the analysis side and the mirror stages with
patch splitting on the synthesis side; the same channel-wise autoregressive
entropy model as WACNN.

Reference:
    R. Zou, C. Song, Z. Zhang, "The Devil Is in the Details: Window-based
    Attention for Image Compression", CVPR 2022. Module names follow the
    authors' ``SymmetricalTransFormer`` (Googolxx/STF) for strict loading.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from licodec.entropy.channel_ar import ChannelARModel
from licodec.entropy.hyper import hyper_analysis, hyper_synthesis
from licodec.layers.transformer import PatchEmbed, SwinStage
from licodec.models.wacnn import RECIPE, SMALL_RECIPE, drop_stray_h_s
from licodec.zoo.registry import register_model

__all__ = ["STF"]


class STF(ChannelARModel):
    """Symmetrical TransFormer.

    Args:
        embed_dim: channels after patch embedding (48); stage ``l`` has
            ``embed_dim * 2**l`` channels and ``y`` has ``embed_dim * 8``.
        depths: Swin blocks per analysis stage (2, 2, 6, 2); synthesis mirrors it.
        num_heads: heads per analysis stage (3, 6, 12, 24).
        window: window size of every stage (4).
        num_slices: channel slices of the entropy model (12); ``max_support``
            is ``num_slices // 2`` as in the authors' code.
        mlp_ratio: MLP expansion (4).
        drop_path_rate: stochastic depth, linear over the analysis blocks (0.2).
        hyper_a / hyper_s: hidden widths of the hyperprior transforms.
        slice_hidden: hidden widths of the slice transforms.
        z_channels: channels of ``z`` (192 = embed_dim * 4 in the paper).
        num_rates: 0 = fixed rate; n > 0 = variable rate with n operating points
            (gain units, see :class:`~licodec.entropy.ChannelARModel`).
    """

    pad_multiple = 64
    patch_size = 2

    def __init__(
        self,
        embed_dim: int = 48,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window: int = 4,
        num_slices: int = 12,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.2,
        hyper_a: tuple[int, int, int, int] = (384, 336, 288, 240),
        hyper_s: tuple[int, int, int, int] = (240, 288, 336, 384),
        slice_hidden: tuple[int, ...] = (224, 176, 128, 64),
        z_channels: int | None = None,
        num_rates: int = 0,
    ) -> None:
        super().__init__()
        if len(depths) != 4 or len(num_heads) != 4:
            raise ValueError("STF has four stages: depths and num_heads need 4 entries")
        self.embed_dim = embed_dim
        M = embed_dim * 8
        p = self.patch_size
        self.patch_embed = PatchEmbed(p, 3, embed_dim)
        self.pos_drop = nn.Dropout(0.0)
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()

        def stage_rates(ds: Sequence[int], i: int) -> list[float]:
            return rates[sum(ds[:i]) : sum(ds[: i + 1])]

        self.layers = nn.ModuleList(
            SwinStage(
                embed_dim * 2**i, depths[i], num_heads[i], window,
                "merge" if i < 3 else None, mlp_ratio, stage_rates(depths, i),
            )
            for i in range(4)
        )  # fmt: skip
        # The synthesis stages take their drop-path rates from the analysis
        # list sliced by the reversed depths (the authors' behaviour).
        rdepths, rheads = list(depths)[::-1], list(num_heads)[::-1]
        self.syn_layers = nn.ModuleList(
            SwinStage(
                embed_dim * 2 ** (3 - i), rdepths[i], rheads[i], window,
                "split" if i < 3 else None, mlp_ratio, stage_rates(rdepths, i),
            )
            for i in range(4)
        )  # fmt: skip
        self.end_conv = nn.Sequential(
            nn.Conv2d(embed_dim, embed_dim * p**2, kernel_size=5, padding=2),
            nn.PixelShuffle(p),
            nn.Conv2d(embed_dim, 3, kernel_size=3, padding=1),
        )
        z_channels = embed_dim * 4 if z_channels is None else z_channels
        self.h_a = hyper_analysis(M, hyper_a, z_channels)
        self.h_mean_s = hyper_synthesis(z_channels, hyper_s, M)
        self.h_scale_s = hyper_synthesis(z_channels, hyper_s, M)
        self.init_entropy_model(
            M, num_slices, num_slices // 2, slice_hidden, z_channels, num_rates=num_rates
        )

    def analysis(self, x: Tensor) -> Tensor:
        t = self.pos_drop(self.patch_embed(x))  # (B, H/2, W/2, C)
        for stage in self.layers:
            t = stage(t)
        return t.permute(0, 3, 1, 2).contiguous()

    def synthesis(self, y_hat: Tensor) -> Tensor:
        t = y_hat.permute(0, 2, 3, 1)
        for stage in self.syn_layers:
            t = stage(t)
        return self.end_conv(t.permute(0, 3, 1, 2).contiguous())


register_model(
    "stf",
    STF,
    description="STF (embed 48, depths 2-2-6-2, window 4, M=384, 12 slices), 99.86 M parameters",
    paper="Zou et al., CVPR 2022",
    recipe=RECIPE,
    checkpoint_filter=drop_stray_h_s,
    memory_per_pixel=1790,
)
register_model(
    "stf-lite",
    STF,
    description="STF reduced for CPU training (embed 8, depths 2-2-2-2, heads 1-2-4-8, M=64, "
    "4 slices, slice transforms 48-32), 1.4 GFLOP per 256x256, variable rate (qualities 1-6)",
    paper="Zou et al., CVPR 2022; gain units: Cui et al., CVPR 2021",
    recipe=SMALL_RECIPE,
    checkpoint_filter=drop_stray_h_s,
    embed_dim=8,
    depths=(2, 2, 2, 2),
    num_heads=(1, 2, 4, 8),
    num_slices=4,
    drop_path_rate=0.1,
    hyper_a=(128, 112, 96, 80),
    hyper_s=(80, 96, 112, 128),
    slice_hidden=(48, 32),
    z_channels=64,
    num_rates=6,
    memory_per_pixel=330,
)
register_model(
    "stf-tiny",
    STF,
    description="STF test config",
    recipe=SMALL_RECIPE,
    checkpoint_filter=drop_stray_h_s,
    embed_dim=8,
    depths=(2, 2, 2, 2),
    num_heads=(1, 2, 2, 4),
    num_slices=4,
    drop_path_rate=0.0,
    hyper_a=(32, 24, 24, 16),
    hyper_s=(16, 24, 24, 32),
    slice_hidden=(16,),
    z_channels=16,
    memory_per_pixel=290,
)
