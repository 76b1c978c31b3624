"""Float32 CPU inference whose result does not depend on ``torch.get_num_threads()``.

Measured on the shipped ``wacnn-lite`` (AVX2): decoding with 1 and with 2 threads
gave pixels one grey level apart in a few samples per image, although the
latents were exact. Three kinds of op were the cause:

* a 1x1 stride-1 convolution (and GDN's, which is one) runs on THNN's
  ``slow_conv2d`` at one thread and on oneDNN at more: two summation orders;
  on AVX-512 (Intel Xeon, MKL) ``slow_conv2d`` itself splits its sums by the
  thread count, and ``F.conv2d`` picks it for some 3x3 shapes too (many
  channels on few pixels: the sub-pixel form of the transposed convolution);
* oneDNN's transposed convolution blocks its work by the thread count;
* elementwise ``sigmoid`` and ``gelu`` compute the tail of each thread's chunk
  with scalar code whose ``exp``/``erf`` differ by an ulp from the vector code,
  and the chunk edges move with the thread count.

:class:`ThreadInvariant` reroutes exactly those: every convolution to oneDNN's,
the 5x5 stride-2 transposed convolution (the one WACNN and STF use) to
an equivalent sub-pixel convolution (a 3x3 convolution with 4x the channels and
a pixel shuffle: oneDNN's forward convolution does not depend on the thread
count), and the elementwise ops to fixed-size chunks that no kernel splits.
The remaining ops (``Linear``, attention, LayerNorm) were
bit-identical from 1 to 8 threads. The mode is for inference only: a model's
synthesis transform runs under it when coding (``_reconstruct``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode

__all__ = ["ThreadInvariant", "subpixel_weight"]

#: Chunk length for elementwise ops: at most GELU's (16384) and TensorIterator's (32768)
#: grain sizes, so a chunk is never split between threads, and a multiple of every vector width.
BLOCK = 16384

# Output phase (0 = even, 1 = odd row/column) -> 5x5 kernel tap read at input offset -1, 0, +1.
_TAPS = {0: (4, 2, 0), 1: (None, 3, 1)}


def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, name: str, default: Any) -> Any:
    return args[i] if len(args) > i else kwargs.get(name, default)


def subpixel_weight(w: Tensor, b: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """``conv_transpose2d(k=5, stride 2, padding 2, output_padding 1)`` as a conv + shuffle.

    Returns the weight (4·Cout, Cin, 3, 3) and bias of a padded 3x3 convolution
    whose ``pixel_shuffle(2)`` equals the transposed convolution with ``w``
    (Cin, Cout, 5, 5) and ``b``.
    """
    cin, cout = w.shape[:2]
    k = w.new_zeros(cout, 2, 2, cin, 3, 3)
    for rh in (0, 1):
        for rw in (0, 1):
            for a, kh in enumerate(_TAPS[rh]):
                for c, kw in enumerate(_TAPS[rw]):
                    if kh is not None and kw is not None:
                        k[:, rh, rw, :, a, c] = w[:, :, kh, kw].t()
    return k.reshape(4 * cout, cin, 3, 3), None if b is None else b.repeat_interleave(4)


def _chunked(x: Tensor, op: Callable[[Tensor, Tensor | None], Tensor]) -> Tensor:
    """``op`` over fixed chunks: the vector/scalar split no longer follows the threads."""
    if x.numel() <= BLOCK or torch.get_num_threads() == 1:  # already serial: the same bits
        return op(x, None)
    flat = x.contiguous().view(-1)
    out = torch.empty_like(flat)
    for i in range(0, flat.numel(), BLOCK):
        op(flat[i : i + BLOCK], out[i : i + BLOCK])
    return out.view(x.shape)


def _sigmoid(x: Tensor, out: Tensor | None) -> Tensor:
    return torch.sigmoid(x) if out is None else torch.sigmoid(x, out=out)


def _gelu(approximate: str) -> Callable[[Tensor, Tensor | None], Tensor]:
    def run(x: Tensor, out: Tensor | None) -> Tensor:
        if out is None:
            return torch._C._nn.gelu(x, approximate=approximate)
        # The out= overload exists at runtime (gelu.out); the stubs omit it.
        return torch._C._nn.gelu(x, approximate=approximate, out=out)  # type: ignore[call-arg]

    return run


def _conv2d(
    x: Tensor,
    w: Tensor,
    b: Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
) -> Tensor:
    """A float32 CPU convolution on a backend whose sums do not follow the thread count.

    oneDNN's forward convolution gave the same bits at 1 to 4 threads for every shape
    tried (216: 1x1 to 5x5 kernels, 3 to 768 channels, 8x12 to 64x96 pixels, on AVX2
    and AVX-512). ``F.conv2d`` picks THNN's ``slow_conv2d`` for some shapes (1x1, and
    3x3 with many channels on few pixels), whose GEMM splits its sums by the thread
    count on AVX-512.
    """
    if torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled:
        return torch.mkldnn_convolution(
            x.contiguous(),
            w.contiguous(),
            b,
            list(padding),
            list(stride),
            list(dilation),
            groups,
        )
    return F.conv2d(x, w, b, stride, padding, dilation, groups)  # no oneDNN: as it comes


class ThreadInvariant(TorchFunctionMode):
    """Within it, CPU float32 inference gives the same bits at any thread count."""

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        x = args[0] if args else None
        if not (isinstance(x, Tensor) and x.device.type == "cpu" and x.dtype == torch.float32):
            return func(*args, **kwargs)
        if func is F.conv2d:
            w, b = args[1], _arg(args, kwargs, 2, "bias", None)
            stride = _arg(args, kwargs, 3, "stride", 1)
            padding = _arg(args, kwargs, 4, "padding", 0)
            dilation = _arg(args, kwargs, 5, "dilation", 1)
            groups = int(_arg(args, kwargs, 6, "groups", 1))
            if x.dim() == 4 and not isinstance(padding, str):
                return _conv2d(x, w, b, _pair(stride), _pair(padding), _pair(dilation), groups)
        elif func is F.conv_transpose2d:
            w, b = args[1], _arg(args, kwargs, 2, "bias", None)
            if (
                x.dim() == 4
                and tuple(w.shape[-2:]) == (5, 5)
                and _pair(_arg(args, kwargs, 3, "stride", 1)) == (2, 2)
                and _pair(_arg(args, kwargs, 4, "padding", 0)) == (2, 2)
                and _pair(_arg(args, kwargs, 5, "output_padding", 0)) == (1, 1)
                and _arg(args, kwargs, 6, "groups", 1) == 1
                and _pair(_arg(args, kwargs, 7, "dilation", 1)) == (1, 1)
            ):
                k, kb = subpixel_weight(w, b)
                # (F.conv2d here would not pass through this mode again: call the backend)
                return F.pixel_shuffle(_conv2d(x, k, kb, (1, 1), (1, 1), (1, 1), 1), 2)
        elif func is F.gelu:
            return _chunked(x, _gelu(_arg(args, kwargs, 1, "approximate", "none")))
        elif func in (torch.sigmoid, Tensor.sigmoid):
            return _chunked(x, _sigmoid)
        return func(*args, **kwargs)
