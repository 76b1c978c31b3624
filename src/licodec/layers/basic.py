"""Basic convolutional layers: conv helpers, GDN, residual blocks.

These are the layers the CNN parts of WACNN, STF and TCM are built from. Module,
parameter and buffer names and shapes are those of CompressAI 1.2.8's layers of
the same names, so the authors' checkpoints and our shipped weights load strictly,
and every forward pass uses the same ops in the same order, so decoded pixels
are bit-identical to those of the CompressAI-based models.

GDN reference:
    J. Ballé, V. Laparra, E. P. Simoncelli, "Density Modeling of Images Using a
    Generalized Normalization Transformation", ICLR 2016.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "GDN",
    "DropPath",
    "LowerBound",
    "NonNegativeParametrizer",
    "ResidualBlock",
    "ResidualBlockUpsample",
    "ResidualBlockWithStride",
    "conv",
    "conv1x1",
    "conv3x3",
    "deconv",
    "lower_bound",
    "subpel_conv3x3",
]


class _LowerBoundFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, bound: Tensor) -> Tensor:
        ctx.save_for_backward(x, bound)
        return torch.max(x, bound)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        x, bound = ctx.saved_tensors
        # Let the gradient through where it would lift x off the bound (or x is above it):
        # a plain max would stall a value that training pushed below the bound forever.
        passes = (x >= bound) | (grad < 0)
        return passes.to(grad.dtype) * grad, None


def lower_bound(x: Tensor, bound: Tensor) -> Tensor:
    """``max(x, bound)``, with a gradient that can still move values up from the bound."""
    return _LowerBoundFn.apply(x, bound)  # type: ignore[no-any-return]


class LowerBound(nn.Module):
    """:func:`lower_bound` with the bound as a buffer (state_dict key ``bound``)."""

    bound: Tensor

    def __init__(self, bound: float) -> None:
        super().__init__()
        self.register_buffer("bound", torch.tensor([float(bound)]))

    def forward(self, x: Tensor) -> Tensor:
        # No cast of the bound: a float32 bound promotes half-precision inputs (autocast)
        # to float32, which the likelihoods need.
        return lower_bound(x, self.bound)


class DropPath(nn.Module):
    """Stochastic depth (Huang et al., ECCV 2016) per sample: in training, a residual
    branch is dropped for a whole sample with probability ``p`` and otherwise scaled by
    ``1 / (1 - p)``; the identity in eval mode. No parameters or buffers."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probability must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device)
        mask.bernoulli_(keep)
        if keep > 0.0:
            mask.div_(keep)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


def conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution (channel mixing, optionally strided)."""
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride)


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution padded by 1, so stride 1 keeps the size and stride s divides it by s."""
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1)


def subpel_conv3x3(in_ch: int, out_ch: int, r: int = 1) -> nn.Sequential:
    """Upsampling by ``r``: a 3x3 conv to ``out_ch * r**2`` channels, then a pixel shuffle.

    Sub-pixel convolution (Shi et al., CVPR 2016) avoids the checkerboard
    artefacts of a transposed convolution. Children: ``0`` (conv), ``1`` (shuffle).
    """
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch * r**2, kernel_size=3, padding=1), nn.PixelShuffle(r)
    )


def conv(in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 2) -> nn.Conv2d:
    """Downsampling conv with "same" padding: the output is ``ceil(size / stride)``."""
    return nn.Conv2d(
        in_channels, out_channels, kernel_size=kernel_size, stride=stride, padding=kernel_size // 2
    )


def deconv(
    in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 2
) -> nn.ConvTranspose2d:
    """Transposed conv that exactly inverts :func:`conv`'s size change (``size * stride``)."""
    return nn.ConvTranspose2d(
        in_channels,
        out_channels,
        kernel_size=kernel_size,
        stride=stride,
        padding=kernel_size // 2,
        output_padding=stride - 1,
    )


class NonNegativeParametrizer(nn.Module):
    """Maps a stored parameter ``p`` to ``max(p, bound)**2 - pedestal`` (>= ``minimum``).

    Training the square root keeps small values (GDN's ``gamma`` starts at zero off
    the diagonal) responsive to gradients, and the bound keeps them above ``minimum``.
    ``pedestal = reparam_offset**2`` and ``bound = sqrt(minimum + pedestal)`` are
    buffers (state_dict keys ``pedestal`` and ``lower_bound.bound``).
    """

    pedestal: Tensor

    def __init__(self, minimum: float = 0.0, reparam_offset: float = 2**-18) -> None:
        super().__init__()
        self.minimum = float(minimum)
        self.reparam_offset = float(reparam_offset)
        pedestal = self.reparam_offset**2
        self.register_buffer("pedestal", torch.tensor([pedestal]))
        self.lower_bound = LowerBound((self.minimum + pedestal) ** 0.5)

    def init(self, x: Tensor) -> Tensor:
        """The stored parameter whose :meth:`forward` is ``x`` (``x`` clipped at 0)."""
        return torch.sqrt(torch.max(x + self.pedestal, self.pedestal))

    def forward(self, x: Tensor) -> Tensor:
        return self.lower_bound(x) ** 2 - self.pedestal


class GDN(nn.Module):
    """Generalized divisive normalization: ``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j**2)``.

    A learned, per-position local gain control that Gaussianizes image statistics
    far better than a pointwise nonlinearity. ``inverse=True`` multiplies by the
    root instead (IGDN, its approximate inverse, used in synthesis transforms).
    ``beta`` (C,) and ``gamma`` (C, C; row i weighs the inputs of output i) are
    stored through :class:`NonNegativeParametrizer`, ``beta`` bounded by ``beta_min``.
    """

    def __init__(
        self,
        in_channels: int,
        inverse: bool = False,
        beta_min: float = 1e-6,
        gamma_init: float = 0.1,
    ) -> None:
        super().__init__()
        self.inverse = bool(inverse)
        self.beta_reparam = NonNegativeParametrizer(minimum=float(beta_min))
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(in_channels)))
        self.gamma_reparam = NonNegativeParametrizer()
        gamma = float(gamma_init) * torch.eye(in_channels)
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma))

    def forward(self, x: Tensor) -> Tensor:
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma)
        # The weighted sum of squares is a 1x1 convolution with gamma as weight and beta
        # as bias. x * rsqrt(norm), not x / sqrt(norm): the same ops, hence the same
        # bits, as the CompressAI layer the published weights were trained and coded with.
        norm = F.conv2d(x**2, gamma[:, :, None, None], beta)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))


class ResidualBlock(nn.Module):
    """conv3x3, LeakyReLU, conv3x3, LeakyReLU, plus the input (1x1-projected if widths differ)."""

    skip: nn.Module | None

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch)
        self.leaky_relu = nn.LeakyReLU(inplace=True)  # in place: it only sees fresh conv outputs
        self.conv2 = conv3x3(out_ch, out_ch)
        self.skip = conv1x1(in_ch, out_ch) if in_ch != out_ch else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.leaky_relu(self.conv2(self.leaky_relu(self.conv1(x))))
        identity = x if self.skip is None else self.skip(x)
        return out + identity


class ResidualBlockWithStride(nn.Module):
    """Downsampling residual block: strided conv3x3, LeakyReLU, conv3x3, GDN, plus a skip.

    The skip is a strided 1x1 conv unless the block keeps both size and width (then
    the input itself). ``skip`` may be replaced by an equivalent module after construction.
    """

    skip: nn.Module | None

    def __init__(self, in_ch: int, out_ch: int, stride: int = 2) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch, stride=stride)
        self.leaky_relu = nn.LeakyReLU(inplace=True)
        self.conv2 = conv3x3(out_ch, out_ch)
        self.gdn = GDN(out_ch)
        reshapes = stride != 1 or in_ch != out_ch
        self.skip = conv1x1(in_ch, out_ch, stride=stride) if reshapes else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.gdn(self.conv2(self.leaky_relu(self.conv1(x))))
        out += x if self.skip is None else self.skip(x)  # GDN's output is not saved for backward
        return out


class ResidualBlockUpsample(nn.Module):
    """Upsampling residual block: subpel conv, LeakyReLU, conv3x3, IGDN, plus a subpel skip."""

    def __init__(self, in_ch: int, out_ch: int, upsample: int = 2) -> None:
        super().__init__()
        self.subpel_conv = subpel_conv3x3(in_ch, out_ch, upsample)
        self.leaky_relu = nn.LeakyReLU(inplace=True)
        self.conv = conv3x3(out_ch, out_ch)
        self.igdn = GDN(out_ch, inverse=True)
        self.upsample = subpel_conv3x3(in_ch, out_ch, upsample)

    def forward(self, x: Tensor) -> Tensor:
        out = self.igdn(self.conv(self.leaky_relu(self.subpel_conv(x))))
        out += self.upsample(x)
        return out
