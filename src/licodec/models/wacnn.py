"""WACNN: the CNN codec with window attention modules (Zou et al., CVPR 2022).

Reference:
    R. Zou, C. Song, Z. Zhang, "The Devil Is in the Details: Window-based
    Attention for Image Compression", CVPR 2022. Module names and sizes follow
    the authors' ``compressai/models/cnn.py`` (Googolxx/STF) so that their
    checkpoints load strictly.
"""

from __future__ import annotations

from torch import Tensor, nn

from licodec.entropy.channel_ar import ChannelARModel
from licodec.entropy.hyper import hyper_analysis, hyper_synthesis
from licodec.layers.basic import GDN, conv, deconv
from licodec.layers.gated import WAM
from licodec.zoo.registry import MS_SSIM_LAMBDAS, TrainRecipe, register_model

__all__ = ["RECIPE", "SMALL_RECIPE", "WACNN", "drop_stray_h_s"]

#: Zou et al.'s training (Googolxx/STF ``train.py``), for WACNN and STF alike: the MSE λ
#: table of the paper, batch 16, Adam 1e-4, ReduceLROnPlateau(0.3, patience 4).
RECIPE = TrainRecipe(
    lambdas={"mse": (0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483), "ms-ssim": MS_SSIM_LAMBDAS},
    settings={
        "batch_size": 16,
        "schedule": "plateau",
        "plateau_factor": 0.3,
        "plateau_patience": 4,
    },
    source="Zou et al., CVPR 2022 (Googolxx/STF train.py)",
)
#: The lite and tiny sizes are meant for CPU steps of 8 crops.
SMALL_RECIPE = RECIPE.with_settings(batch_size=8)


class WACNN(ChannelARModel):
    """CNN analysis/synthesis with WAM blocks at 1/4 and 1/16 resolution.

    Args:
        N: channels of the inner transforms (192 in the paper).
        M: channels of ``y`` (320).
        num_slices: channel slices of the entropy model (10).
        max_support: decoded slices used as context (5).
        heads: attention heads of every WAM (8).
        windows: window sizes at 1/4 and 1/16 resolution (8, 4).
        hyper_a: hidden widths of ``h_a`` (320, 288, 256, 224).
        hyper_s: hidden widths of ``h_mean_s``/``h_scale_s`` (192, 224, 256, 288).
        slice_hidden: hidden widths of the slice transforms (224, 176, 128, 64).
        z_channels: channels of ``z`` (192).
        num_rates: 0 = fixed rate; n > 0 = variable rate with n operating points
            (gain units, see :class:`~licodec.entropy.ChannelARModel`).
    """

    pad_multiple = 64

    def __init__(
        self,
        N: int = 192,
        M: int = 320,
        num_slices: int = 10,
        max_support: int = 5,
        heads: int = 8,
        windows: tuple[int, int] = (8, 4),
        hyper_a: tuple[int, int, int, int] = (320, 288, 256, 224),
        hyper_s: tuple[int, int, int, int] = (192, 224, 256, 288),
        slice_hidden: tuple[int, ...] = (224, 176, 128, 64),
        z_channels: int = 192,
        num_rates: int = 0,
    ) -> None:
        super().__init__()
        w4, w16 = windows
        self.g_a = nn.Sequential(
            conv(3, N, kernel_size=5, stride=2), GDN(N),
            conv(N, N, kernel_size=5, stride=2), GDN(N),
            WAM(N, heads, w4),
            conv(N, N, kernel_size=5, stride=2), GDN(N),
            conv(N, M, kernel_size=5, stride=2),
            WAM(M, heads, w16),
        )  # fmt: skip
        self.g_s = nn.Sequential(
            WAM(M, heads, w16),
            deconv(M, N, kernel_size=5, stride=2), GDN(N, inverse=True),
            deconv(N, N, kernel_size=5, stride=2), GDN(N, inverse=True),
            WAM(N, heads, w4),
            deconv(N, N, kernel_size=5, stride=2), GDN(N, inverse=True),
            deconv(N, 3, kernel_size=5, stride=2),
        )  # fmt: skip
        self.h_a = hyper_analysis(M, hyper_a, z_channels)
        self.h_mean_s = hyper_synthesis(z_channels, hyper_s, M)
        self.h_scale_s = hyper_synthesis(z_channels, hyper_s, M)
        self.init_entropy_model(
            M, num_slices, max_support, slice_hidden, z_channels, num_rates=num_rates
        )


def drop_stray_h_s(state_dict: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """The STF repository's loader (for WACNN and STF) discards every ``h_s.*`` key, as
    if some of its checkpoints carried an unused module; so do we (ARCHITECTURE.md §7)."""
    if hasattr(model, "h_s"):
        return state_dict
    return {k: v for k, v in state_dict.items() if not k.startswith("h_s.")}


register_model(
    "wacnn",
    WACNN,
    description="WACNN (N=192, M=320, 10 slices), 75.24 M parameters",
    paper="Zou et al., CVPR 2022",
    recipe=RECIPE,
    checkpoint_filter=drop_stray_h_s,
    memory_per_pixel=930,
)
register_model(
    "wacnn-lite",
    WACNN,
    description="WACNN reduced for CPU training (N=32, M=128, 4 slices, 2 heads), "
    "3.0 GFLOP per 256x256, variable rate (qualities 1-6)",
    paper="Zou et al., CVPR 2022; gain units: Cui et al., CVPR 2021",
    recipe=SMALL_RECIPE,
    checkpoint_filter=drop_stray_h_s,
    N=32,
    M=128,
    num_slices=4,
    max_support=2,
    heads=2,
    hyper_a=(128, 112, 96, 80),
    hyper_s=(64, 80, 96, 112),
    slice_hidden=(64, 48),
    z_channels=64,
    num_rates=6,
    memory_per_pixel=270,
)
register_model(
    "wacnn-tiny",
    WACNN,
    description="WACNN test config",
    recipe=SMALL_RECIPE,
    checkpoint_filter=drop_stray_h_s,
    N=16,
    M=24,
    num_slices=3,
    max_support=2,
    heads=2,
    hyper_a=(24, 24, 16, 16),
    hyper_s=(16, 16, 24, 24),
    slice_hidden=(16,),
    z_channels=16,
    memory_per_pixel=160,
)
