"""Decoder limits: how much memory and work a ``.lic`` file may make the decoder spend.

The container parser (:mod:`licodec.codec.container`) checks that a file is
well formed; these checks are reader *policy*. They run on the parsed header
before anything is allocated for the image and before the model sees a byte of
the file, and each refusal is a one-line :class:`LimitError` (a
:class:`~licodec.errors.FormatError`, exit code 4). They accept every file the
encoder writes (the tests check this arithmetically for every registered model,
quality and the tile grids of Kodak and a 6000 x 4000 photo) and are documented,
with their derivations, in ``docs/format.md`` ("Decoder limits").

Two groups:

* :func:`check_header` needs only the header (``licodec info`` runs it too):
  tile area, tiles per pixel, and the shape of the entropy-coded streams
  (32-bit words; for the rANS streams of formats 1-3 also a flushed 64-bit
  state in the coder's range).
* :func:`check_decode` needs the model's geometry (:class:`ModelGeometry`):
  the tile grid must be the encoder's (steps are multiples of the model's pad
  multiple), each tile's latent shape must be the one the model gives its size,
  the streams must be long enough for the number of symbols they code (the
  least a symbol can cost, from the coder's tables), and the estimated peak
  memory must stay under a budget (``--max-memory``).

This module imports neither torch nor the models; the decoder fills in
:class:`ModelGeometry` from the loaded model.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from licodec.codec.container import MAX_TILE_SIDE, Container, stream_names, tile_rects
from licodec.errors import FormatError

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "IMAGE_BYTES_PER_PIXEL",
    "MAX_INPUT_BYTES",
    "MAX_TILE_AREA",
    "MEMORY_PER_TILE",
    "MIN_PAD_MULTIPLE",
    "UNKNOWN_MEMORY_PER_PIXEL",
    "LimitError",
    "ModelGeometry",
    "add_max_input_option",
    "add_max_memory_option",
    "byte_size",
    "check_decode",
    "check_geometry",
    "check_header",
    "format_size",
    "memory_estimate",
    "min_symbol_cost",
    "parse_size",
]

#: Most bytes read from one input (file, stdin or anything else); ``--max-input``.
MAX_INPUT_BYTES = 256 << 20
#: Default budget for the decoder's estimated peak working memory; ``--max-memory``.
DEFAULT_MAX_MEMORY = 6 << 30
#: Largest tile the encoder writes: its largest ``--tile-size`` is 4096, a
#: multiple of every pad multiple, so no tile (or padded tile) is larger.
MAX_TILE_AREA = MAX_TILE_SIDE * MAX_TILE_SIDE
#: Smallest pad multiple of any registered model: no encoder tile is narrower
#: (except at the image's edge), which bounds the tile count by the pixel count.
MIN_PAD_MULTIPLE = 64

# The entropy coders. Both write whole 32-bit words and code with the models'
# 16-bit tables. CompressAI's rANS (formats 1-3; ryg_rans' Rans64) keeps a
# 64-bit state in [2^31, 2^63) and flushes it as two words, so its streams
# have at least two words and start with a state in that range. The range
# coder (format 4) writes at least one word for any symbol.
RANS_PRECISION = 16
RANS_L = 1 << 31
RANS_STATE_MAX = 1 << 63
STREAM_WORD = 4
MIN_STREAM_BYTES = {"rans": 8, "range": 4}
#: Bits a range-coded stream may fall short of its symbols' information content.
#: None, measured: constriction's flush always writes whole words that identify the
#: final interval, and the cheapest message there is (the likeliest symbol of a table,
#: repeated) never came out shorter than its information (tests/test_entropy_coder.py
#: sweeps lengths 1 to 3 million for several probabilities).
RANGE_SLACK_BITS = 0

#: Decode working memory per padded pixel (bytes) of an architecture whose registry
#: entry has no measurement (``register_model(..., memory_per_pixel=)``, measured as
#: its docstring says): above every measured one (tcm-l, 3490).
UNKNOWN_MEMORY_PER_PIXEL = 3500
#: Fixed part of one tile's decode (buffers that do not grow with the tile).
MEMORY_PER_TILE = 64 << 20
#: The decoded image held while it is assembled and handed on (uint8 planes,
#: the PIL image, alpha, the output encoder's copy): about this many bytes per
#: image pixel, not part of the per-tile estimate (``--max-pixels`` bounds it).
IMAGE_BYTES_PER_PIXEL = 16


class LimitError(FormatError):
    """A well-formed file that the decoder refuses by policy (exit code 4)."""


# -- sizes -----------------------------------------------------------------------

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``"4G"``, ``"512MiB"``, ``"1.5g"``, ``"100000"`` -> bytes (binary units). ValueError if not."""
    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"expected a size such as 512M or 4G, got {text!r}")
    value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if value < 1:
        raise ValueError(f"expected a positive size, got {text!r}")
    return value


def format_size(n: int) -> str:
    """Bytes as the short binary form used in messages (``4 GiB``, ``256 MiB``, ``999 B``)."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            v = n / (1 << shift)
            return f"{v:.0f} {unit}" if v == int(v) or v >= 100 else f"{v:.1f} {unit}"
    return f"{n} B"


# -- the coder's bound -------------------------------------------------------------


def min_symbol_cost(max_freq: int, coder: str = "range") -> float:
    """Fewest bits of stream one symbol can consume when no table entry is more
    likely than ``max_freq / 2^16``.

    Range coder (format 4): a symbol of probability ``p`` narrows the coder's
    interval by ``p`` or more (truncation only narrows it further), so the
    stream carries at least ``-log2(max_freq / 2^16)`` bits per symbol (less
    :data:`RANGE_SLACK_BITS` in all).

    rANS (formats 1-3): decoding a symbol of frequency ``f`` maps the state ``x``
    (kept >= 2^31) to ``x' = f * floor(x / 2^16) + r`` with ``0 <= r < f``, so
    ``x' < x * f / 2^16 + (2^16 - f)`` and ``log2 x`` falls by at least
    ``log2(2^31 / (f * (2^15 - 1) + 2^16))`` bits, which decreases with ``f``.
    Escaped (bypass) symbols consume 4 more bits per nibble. The state starts
    below 2^63, ends at 2^31 or above and gains at most 32 bits per word read,
    so a stream of ``n`` bytes decodes at most ``8 n / min_symbol_cost`` symbols.
    """
    if not 1 <= max_freq < 1 << RANS_PRECISION:
        raise ValueError(f"a table frequency must be in 1..65535, got {max_freq}")
    if coder == "range":
        return -math.log2(max_freq / (1 << RANS_PRECISION))
    return math.log2(RANS_L / (max_freq * ((1 << 15) - 1) + (1 << 16)))


def max_symbols(stream_bytes: int, cost: float, coder: str = "range") -> int:
    """Most symbols a stream of ``stream_bytes`` bytes can code at ``cost`` bits each."""
    slack = RANGE_SLACK_BITS if coder == "range" else 0
    return math.floor((8 * stream_bytes + slack) / cost)


# -- geometry ----------------------------------------------------------------------


@dataclass(frozen=True)
class ModelGeometry:
    """What the decoder limits need to know about a model (filled in from the module)."""

    arch: str
    pad_multiple: int
    #: Ratio of a padded tile's side to its z side (64 for every registered model).
    z_stride: int
    y_channels: int
    z_channels: int
    num_slices: int
    #: Largest symbol frequency (of 2^16) in the y and z coder tables.
    y_max_freq: int
    z_max_freq: int
    #: Decode working memory per padded pixel (bytes; the registry entry's measurement).
    memory_per_pixel: int = UNKNOWN_MEMORY_PER_PIXEL

    def z_shape(self, h: int, w: int) -> tuple[int, int]:
        """The z shape the encoder writes for an ``h`` x ``w`` tile."""
        return _z_shape(h, w, self.pad_multiple, self.z_stride)

    def symbols(self, z_shape: tuple[int, int]) -> tuple[int, int]:
        """(y symbols, z symbols) a tile with this z shape codes."""
        zh, zw = z_shape
        y_per_z = (self.z_stride // self.y_stride) ** 2
        return self.y_channels * y_per_z * zh * zw, self.z_channels * zh * zw

    @property
    def y_stride(self) -> int:
        return self.z_stride // 4  # the hyperprior halves twice


# -- checks ------------------------------------------------------------------------


def _streams_of(c: Container) -> list[tuple[str, bytes]]:
    names = stream_names(c.streams_per_tile)
    return [
        (f"tile {i} {names[j]} stream", s)
        for i, t in enumerate(c.tiles)
        for j, s in enumerate(t.streams)
    ]


def check_header(c: Container) -> None:
    """Limits that need only the header: tile area, tiles per pixel, stream shape."""
    rects = tile_rects(c.width, c.height, c.tile_size)
    tw, th = c.tile_size if c.tile_size is not None else (c.width, c.height)
    if tw * th > MAX_TILE_AREA:
        raise LimitError(
            f"tile {tw}x{th} is larger than the encoder writes ({MAX_TILE_SIDE}x{MAX_TILE_SIDE})"
        )
    most = math.ceil(c.width / MIN_PAD_MULTIPLE) * math.ceil(c.height / MIN_PAD_MULTIPLE)
    if len(rects) > most:
        raise LimitError(
            f"{len(rects)} tiles for {c.width}x{c.height} pixels: the encoder writes at most "
            f"{most} (tiles are at least {MIN_PAD_MULTIPLE} pixels wide and high except at the "
            "image's edge)"
        )
    least = MIN_STREAM_BYTES[c.coder]
    for what, s in _streams_of(c):
        if len(s) < least or len(s) % STREAM_WORD:
            raise LimitError(
                f"{what} is {len(s)} bytes: the entropy coder writes whole 4-byte words, "
                f"at least {least} bytes"
            )
        if c.coder != "rans":
            continue
        state = int.from_bytes(s[:4], "little") | int.from_bytes(s[4:8], "little") << 32
        if not RANS_L <= state < RANS_STATE_MAX:
            raise LimitError(f"{what} does not start with an entropy coder state")


def check_geometry(
    c: Container,
    arch: str,
    pad_multiple: int,
    z_stride: int,
    max_memory: int = DEFAULT_MAX_MEMORY,
    memory_per_pixel: int = UNKNOWN_MEMORY_PER_PIXEL,
) -> None:
    """The limits that need only the architecture's pad multiple and z stride (class
    attributes: the decoder checks them before it loads any weights): the tile grid
    is the encoder's, each tile's latent shape is the one the model gives its size,
    and the model's activations on the largest padded tile fit ``max_memory``."""
    p = pad_multiple
    if c.tile_size is not None:
        for side, step, name in (
            (c.width, c.tile_size[0], "width"),
            (c.height, c.tile_size[1], "height"),
        ):
            if step != side and step % p:
                raise LimitError(
                    f"tile {name} {step} is not a multiple of {arch}'s pad multiple {p} "
                    f"(the encoder's tiles are, except a single tile across the image)"
                )
    largest = 0
    for i, ((_, _, w, h), t) in enumerate(zip(tile_rects(c.width, c.height, c.tile_size), c.tiles)):
        want = _z_shape(h, w, p, z_stride)
        if tuple(t.z_shape) != want:
            raise LimitError(
                f"tile {i}: latent shape {t.z_shape[0]}x{t.z_shape[1]} does not fit its "
                f"{w}x{h} pixels ({arch} codes them as {want[0]}x{want[1]})"
            )
        largest = max(largest, want[0] * want[1] * z_stride * z_stride)
    if largest > MAX_TILE_AREA:
        raise LimitError(f"a padded tile of {largest} pixels is larger than the encoder writes")
    _check_memory(memory_per_pixel * largest + MEMORY_PER_TILE, max_memory)


def _check_memory(estimate: int, max_memory: int) -> None:
    if estimate > max_memory:
        raise LimitError(
            f"decoding needs about {format_size(estimate)} of memory, more than the limit of "
            f"{format_size(max_memory)} (raise it with --max-memory)"
        )


def _z_shape(h: int, w: int, p: int, z_stride: int) -> tuple[int, int]:
    return (math.ceil(h / p) * p // z_stride, math.ceil(w / p) * p // z_stride)


def check_decode(c: Container, geo: ModelGeometry, max_memory: int = DEFAULT_MAX_MEMORY) -> int:
    """Every limit that needs the model; returns the memory estimate (bytes).

    :func:`check_geometry`, then the symbols each stream codes against the most it can
    code (:func:`min_symbol_cost` of the tables' largest frequency), then the whole
    memory estimate (coder buffers included) against ``max_memory``.
    """
    check_geometry(c, geo.arch, geo.pad_multiple, geo.z_stride, max_memory, geo.memory_per_pixel)
    y_cost = min_symbol_cost(geo.y_max_freq, c.coder)
    z_cost = min_symbol_cost(geo.z_max_freq, c.coder)
    for i, t in enumerate(c.tiles):
        ny, nz = geo.symbols(t.z_shape)
        if c.streams_per_tile == 2:
            checks = [("y", ny, t.y_stream, y_cost), ("z", nz, t.z_stream, z_cost)]
        else:  # which stream codes what is the model's business: bound them together
            checks = [("(all streams)", ny + nz, b"".join(t.streams), min(y_cost, z_cost))]
        for name, n, stream, cost in checks:
            most = max_symbols(len(stream), cost, c.coder)
            if n > most:
                raise LimitError(
                    f"tile {i}: a {len(stream)}-byte {name} stream cannot code {n} symbols "
                    f"(at most {most}: no {geo.arch} symbol costs less than {cost:.3g} bits)"
                )
    estimate = memory_estimate(c, geo)
    _check_memory(estimate, max_memory)
    return estimate


def memory_estimate(c: Container, geo: ModelGeometry) -> int:
    """Estimated peak working memory (bytes) of decoding ``c``'s largest tile: the
    model's activations on the padded tile and the coder's buffers.

    Not included (bounded by ``--max-pixels`` instead): the decoded image itself,
    about :data:`IMAGE_BYTES_PER_PIXEL` bytes per pixel while it is assembled.
    """
    rects = tile_rects(c.width, c.height, c.tile_size)
    worst = 0
    for (_, _, w, h), t in zip(rects, c.tiles):
        zh, zw = geo.z_shape(h, w)
        padded = zh * geo.z_stride * zw * geo.z_stride
        ny, _ = geo.symbols((zh, zw))
        # the streams (bytes and a copy as words; the rANS decoder's words as Python ints)
        per_byte = 3 if c.coder == "range" else 10
        coder = per_byte * sum(len(s) for s in t.streams)
        # one slice's symbols and indexes: int64 arrays and their by-table copies
        # (the rANS decoder holds them as lists of Python ints)
        coder += (48 if c.coder == "range" else 96) * ny // max(1, geo.num_slices)
        worst = max(worst, geo.memory_per_pixel * padded + MEMORY_PER_TILE + coder)
    return worst


# -- command-line options ------------------------------------------------------------


def byte_size(text: str) -> int:
    """argparse type: a size such as ``512M`` or ``4G`` (a bad one is a usage error, exit 2)."""
    import argparse

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_max_input_option(parser: Any) -> None:
    parser.add_argument(
        "--max-input",
        type=byte_size,
        default=MAX_INPUT_BYTES,
        metavar="SIZE",
        help="most bytes read from one input, file or stdin (default: 256M; units K, M, G)",
    )


def add_max_memory_option(parser: Any) -> None:
    parser.add_argument(
        "--max-memory",
        type=byte_size,
        default=DEFAULT_MAX_MEMORY,
        metavar="SIZE",
        help="refuse files whose decoding is estimated to need more working memory per "
        "tile (default: 6G; units K, M, G)",
    )
