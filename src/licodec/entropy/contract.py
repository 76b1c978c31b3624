"""The model contract: what the codec, evaluation, training and the bit maps rely on.

Every registered model follows it (:class:`~licodec.entropy.channel_ar.ChannelARModel`
implements it once for all families); code that takes a model types it as
:class:`CodecModel` instead of probing attributes. It is CompressAI's contract
(``forward`` / ``compress`` / ``decompress`` / ``update``) made explicit, plus
what a container needs: the padding, the rate points, the checksum of the latents.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["CodecModel", "Coded", "codec_model"]


@dataclass
class Coded(Mapping[str, Any]):
    """What ``compress`` returns: the named streams and what decoding them needs.

    A mapping too, with CompressAI's keys, so ``decompress(**coded)`` and
    ``coded["strings"]`` keep working.
    """

    #: CompressAI's layout: one list per stream name, one entry per image (``y``: one
    #: stream for the batch).
    strings: list[list[bytes]]
    #: ``z``'s spatial shape; ``size``: the input's (the decoder crops to it).
    shape: tuple[int, int]
    size: tuple[int, int]
    #: CRC32 of every coded symbol and its table index (the decoder recomputes it).
    latent_crc: int
    portable: bool
    #: What decoding will return, when ``compress(..., reconstruct=True)`` computed it.
    x_hat: Tensor | None = None

    #: The name of each entry of ``strings``, in order (what a container stores).
    stream_names: Sequence[str] = ("y", "z")

    def streams(self) -> dict[str, bytes]:
        """One image's streams by name (a batch of one)."""
        return {n: bytes(s[0]) for n, s in zip(self.stream_names, self.strings)}

    def _keys(self) -> list[str]:
        return [
            f.name
            for f in fields(self)
            if f.name != "stream_names" and (f.name != "x_hat" or self.x_hat is not None)
        ]

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        """As on CompressAI's dict, for the keys it has."""
        if key not in {f.name for f in fields(self)} - {"stream_names"}:
            raise KeyError(key)
        setattr(self, key, value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())


@runtime_checkable
class CodecModel(Protocol):
    """A learned codec as licodec uses it (``create_model`` builds them)."""

    #: The registry id and the builder's keyword arguments (saved with the weights).
    arch: str
    config: dict[str, Any]
    #: Input sides are padded to a multiple of this (see :meth:`pads_for`).
    pad_multiple: int
    #: Operating points of a variable-rate model; 0 for a fixed-rate one.
    num_rates: int
    #: Ratio of the input's size to ``y``'s (``z``'s is four times it), ``y``'s channels,
    #: and ``y``'s symbols over those of the largest coding step (the decoder's limits).
    y_stride: int
    M: int
    step_divisor: int
    #: The entropy models (CompressAI's names and buffers: the coder tables).
    entropy_bottleneck: Any
    gaussian_conditional: Any

    def __call__(self, *args: Any, **kwargs: Any) -> Any:  # forward, as nn.Module's
        ...

    def to(self, *args: Any, **kwargs: Any) -> Any: ...

    def eval(self) -> Any: ...

    def pads_for(self, size: Sequence[int]) -> tuple[int, int, int, int]:
        """(left, right, top, bottom) zeros that pad an input of ``size`` (H, W)."""
        ...

    def forward(
        self,
        x: Tensor,
        rate: Any = None,
        portable: bool = False,
        latents: Any = None,
        rounding: Any = None,
    ) -> dict[str, Any]: ...

    def compress(
        self,
        x: Tensor,
        rate: Any = None,
        portable: bool = False,
        reconstruct: bool = False,
        latents: Any = None,
    ) -> Coded: ...

    def decompress(
        self,
        strings: Sequence[Sequence[bytes]],
        shape: Sequence[int],
        size: Sequence[int] | None = None,
        rate: Any = None,
        portable: bool = False,
        latent_crc: int | None = None,
        x_hat: Tensor | None = None,
        coder: str = ...,
    ) -> dict[str, Any]: ...

    def update(
        self, scale_table: Tensor | None = None, force: bool = False, update_quantiles: bool = False
    ) -> bool: ...

    def latents(self, x: Tensor, rate: float | None = None) -> tuple[Tensor, Tensor]: ...


def codec_model(module: object) -> CodecModel:
    """``module`` as a :class:`CodecModel`, or a :class:`~licodec.errors.ModelError` that
    names what it lacks (a model built outside the registry, say)."""
    from licodec.errors import ModelError

    if isinstance(module, CodecModel):
        return module
    # the protocol's own members: its annotated attributes and its public methods
    methods = (n for n, v in vars(CodecModel).items() if callable(v) and not n.startswith("_"))
    members = [*CodecModel.__annotations__, *methods]
    missing = [n for n in members if not hasattr(module, n)]
    raise ModelError(
        f"{type(module).__name__} does not follow licodec's model contract (no "
        f"{', '.join(missing)}): build it with licodec.create_model"
    )
