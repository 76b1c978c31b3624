"""The ``.lic`` container: serialise and parse, with every field validated.

This module knows nothing about models or torch: it turns a :class:`Container`
into bytes and back. The byte layout is documented in ``docs/format.md``; keep
the two in step. Parsing never allocates more than the input's own size plus
bounded constants before the sizes it reads have been checked, and every
failure is a :class:`~licodec.errors.FormatError` with a one-line message.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from dataclasses import dataclass, field
from enum import IntEnum

from licodec.codec.quality import QUALITY_CODES
from licodec.errors import FormatError

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_ICC_BYTES",
    "MAX_METADATA_BYTES",
    "MAX_PIXELS",
    "MAX_QUALITY",
    "MAX_STREAMS",
    "MAX_TILE_SIDE",
    "AlphaMethod",
    "Chunk",
    "ColourMode",
    "Container",
    "TileRecord",
    "decode_varint",
    "encode_varint",
    "latent_shape_bound",
    "parse",
    "serialise",
    "stream_names",
    "tile_rects",
]

#: Two magic bytes: 0x89 keeps text files (and 7-bit transports) from matching.
MAGIC = b"\x89L"
#: Version 4: the streams are range-coded (constriction); versions 1-3 hold CompressAI
#: rANS streams. The version is what names the entropy coder (``coder``). Version 5
#: adds the RATE chunk (a quality between a variable-rate model's trained points);
#: a file without it is laid out exactly as version 4.
FORMAT_VERSION = 5
#: Default bound on width * height that the parser accepts (about 268 Mpixel).
MAX_PIXELS = 1 << 28
#: Largest tile side the format allows; bounds the memory one tile decode needs.
MAX_TILE_SIDE = 4096
#: Largest ICC profile carried (real profiles are a few kB up to ~1 MB).
MAX_ICC_BYTES = 16 << 20
#: Largest inflated EXIF, XMP or text chunk (EXIF in a JPEG is at most 64 kB).
MAX_METADATA_BYTES = 16 << 20
#: Most metadata chunks in one file (version 3).
MAX_CHUNKS = 16
#: Most entropy-coded streams in one tile (STREAMS chunk, version 5).
MAX_STREAMS = 16


class Chunk(IntEnum):
    """Metadata chunk types (version 3). Types with bit 7 set are critical: a reader
    that does not know one refuses the file; unknown others are skipped."""

    ICC = 1  # zlib of the ICC profile
    SRGB = 2  # 1 byte, 1: the standard sRGB profile (the reader attaches its own copy)
    EXIF = 3  # zlib of the EXIF TIFF structure (without the "Exif\0\0" prefix)
    XMP = 4  # zlib of the XMP packet (UTF-8)
    TEXT = 5  # zlib of UTF-8 JSON [[key, value], ...]: PNG text chunks
    #: Critical (version 5): varint, the quality on the 0-100 scale in hundredths
    #: (:mod:`licodec.codec.quality`), present only between trained points.
    RATE = 0x86
    #: Critical (version 5): varint, the streams per tile, present only when not 2.
    STREAMS = 0x87


_CRITICAL = 0x80
#: Longest model id accepted.
MAX_MODEL_ID = 64
#: Largest quality index the format stores (5 bits since version 2).
MAX_QUALITY = 31
_PORTABLE_BIT = 0x20  # in the quality / metric byte (version 2)

METRICS = ("mse", "ms-ssim", None)  # code 0, 1, 2 (= unspecified); 3 is reserved
_MODEL_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._+-]*$")
_MIN_FILE = len(MAGIC) + 1 + 1 + 1 + 1 + 8 + 1 + 1 + 4 + 4  # smallest conceivable file


class ColourMode(IntEnum):
    """How the decoded colour planes map back to an image mode."""

    RGB = 0
    L = 1  # coded once through the RGB model (replicated), restored as L
    RGBA = 2
    LA = 3

    @property
    def has_alpha(self) -> bool:
        return self in (ColourMode.RGBA, ColourMode.LA)

    @property
    def channels(self) -> int:
        """Channels of the lossy part of the decoded image (1 or 3)."""
        return 1 if self in (ColourMode.L, ColourMode.LA) else 3

    @property
    def pil_mode(self) -> str:
        return self.name


class AlphaMethod(IntEnum):
    """How the lossless alpha plane is stored."""

    CONSTANT = 0  # one byte: every pixel has this alpha
    ZLIB = 1  # zlib stream of the raw plane (row-major, 1 byte per pixel)
    PNG = 2  # a grayscale PNG of the plane


def stream_names(n: int) -> tuple[str, ...]:
    """What messages call a tile's ``n`` streams, in file order (z and y, or numbers)."""
    return ("z", "y") if n == 2 else tuple(f"#{j}" for j in range(n))


@dataclass(frozen=True, init=False)
class TileRecord:
    """One tile's entropy-coded payload: z's shape and the model's streams in file order.

    The file order is the reverse of the model's (CompressAI's ``strings`` list the
    latent first and its side information last; a file puts the side information
    first): for the two-stream models of today, ``(z, y)``. A file whose tiles hold
    another number of streams says so in a STREAMS chunk.
    """

    z_shape: tuple[int, int]
    streams: tuple[bytes, ...]

    def __init__(self, z_shape: tuple[int, int], *streams: bytes) -> None:
        object.__setattr__(self, "z_shape", z_shape)
        object.__setattr__(self, "streams", tuple(streams))

    @property
    def z_stream(self) -> bytes:
        """The side information (the first stream)."""
        return self.streams[0]

    @property
    def y_stream(self) -> bytes:
        """The latent of a two-stream tile (the last stream)."""
        return self.streams[-1]


@dataclass
class Container:
    """Everything a ``.lic`` file holds, in decoded form."""

    model_id: str
    weights_digest: bytes
    width: int
    height: int
    colour: ColourMode
    tiles: list[TileRecord]
    #: Version 2: CRC32 of the decoded latents (every tile's ``latent_crc``, chained);
    #: version 1: CRC32 of the decoded 8-bit pixels.
    check_crc: int
    quality: int = 0
    metric: str | None = None
    tile_size: tuple[int, int] | None = None  # (tile_w, tile_h); None = one tile
    icc_profile: bytes | None = None
    #: The image carried the standard sRGB profile, stored as a one-byte flag (version 3).
    srgb: bool = False
    exif: bytes | None = None  # TIFF structure, no "Exif\0\0" prefix (version 3)
    xmp: bytes | None = None  # (version 3)
    text: tuple[tuple[str, str], ...] = ()  # PNG text chunks, in order (version 3)
    alpha_method: AlphaMethod | None = None
    alpha_data: bytes | None = None
    #: The quality (0..100 in hundredths) when it lies between a variable-rate model's
    #: trained points (version 5); None: the trained point ``quality``.
    rate_code: int | None = None
    #: Entropy parameters computed in float64 (decodable on any machine).
    portable: bool = False
    version: int = FORMAT_VERSION
    #: Byte counts filled in by :func:`parse` / :func:`serialise` (informational).
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def coder(self) -> str:
        """The entropy coder of the streams (:mod:`licodec.entropy.coder`'s ids)."""
        return "rans" if self.version <= 3 else "range"

    @property
    def payload_bytes(self) -> int:
        """Bytes of model streams (what the entropy coder produced)."""
        return sum(len(s) for t in self.tiles for s in t.streams)

    @property
    def streams_per_tile(self) -> int:
        """Streams in every tile (2: z and y, the only layout before STREAMS chunks)."""
        return len(self.tiles[0].streams) if self.tiles else 2


# -- varints -------------------------------------------------------------------


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128 (7 bits per byte, low group first)."""
    if value < 0:
        raise ValueError(f"varint must be >= 0, got {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes | memoryview, pos: int, what: str, limit: int) -> tuple[int, int]:
    """Read one varint at ``pos``; it must be canonical and ``<= limit``."""
    value = 0
    shift = 0
    start = pos
    while True:
        if pos >= len(data):
            raise FormatError(f"file is truncated (in the {what} field)")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if value > limit:
            raise FormatError(f"{what} is out of range (more than {limit})")
        if not byte & 0x80:
            if byte == 0 and pos - start > 1:
                raise FormatError(f"{what} is not canonically encoded")
            return value, pos
        shift += 7
        if pos - start >= 10:
            raise FormatError(f"{what} is out of range (varint too long)")


# -- geometry ------------------------------------------------------------------


def tile_rects(
    width: int, height: int, tile_size: tuple[int, int] | None
) -> list[tuple[int, int, int, int]]:
    """``(x, y, w, h)`` of every tile in raster order; edge tiles are smaller."""
    if tile_size is None:
        return [(0, 0, width, height)]
    tw, th = tile_size
    rects = []
    for y in range(0, height, th):
        for x in range(0, width, tw):
            rects.append((x, y, min(tw, width - x), min(th, height - y)))
    return rects


def latent_shape_bound(h: int, w: int) -> tuple[int, int]:
    """Largest z shape the format accepts for an ``h`` x ``w`` tile.

    Every supported model downsamples z by at least 16 after padding its input
    to a multiple of at most 256, so z has at most ``ceil(h / 16) + 16`` rows.
    The bound keeps a crafted file from making the decoder allocate a latent
    far larger than its declared image.
    """
    return (math.ceil(h / 16) + 16, math.ceil(w / 16) + 16)


# -- serialise -------------------------------------------------------------------


def _metric_code(metric: str | None) -> int:
    try:
        return METRICS.index(metric)
    except ValueError:
        return 2  # unknown metric names are stored as "unspecified"


def serialise(c: Container) -> bytes:
    """Bytes of ``c`` (always the current format version). Raises ValueError on bad fields."""
    if c.version != FORMAT_VERSION:
        # A parsed older file keeps its own check semantics; it cannot be re-labelled.
        raise ValueError(f"can only write format version {FORMAT_VERSION}, not {c.version}")
    mid = c.model_id.encode("ascii")
    if not (1 <= len(mid) <= MAX_MODEL_ID) or not _MODEL_ID_RE.match(c.model_id):
        raise ValueError(f"model id {c.model_id!r} is not a valid format id")
    if len(c.weights_digest) != 8:
        raise ValueError("weights digest must be 8 bytes")
    if not 0 <= c.quality <= MAX_QUALITY:
        raise ValueError(f"quality {c.quality} does not fit the format (0..{MAX_QUALITY})")
    if c.width < 1 or c.height < 1:
        raise ValueError("image must be at least 1x1")
    rects = tile_rects(c.width, c.height, c.tile_size)
    if len(rects) != len(c.tiles):
        raise ValueError(f"{len(c.tiles)} tile records for a grid of {len(rects)} tiles")
    if c.colour.has_alpha != (c.alpha_method is not None and c.alpha_data is not None):
        raise ValueError("alpha data must be present exactly when the colour mode has alpha")
    chunks = _chunks_of(c)

    flags = int(c.colour) & 0x3
    if chunks:
        flags |= 0x4
    if c.tile_size is not None:
        flags |= 0x8
    if len(mid) <= 15:
        flags |= len(mid) << 4
    out = bytearray(MAGIC)
    out.append(FORMAT_VERSION)
    out.append(flags)
    out.append(c.quality | (_PORTABLE_BIT if c.portable else 0) | (_metric_code(c.metric) << 6))
    if len(mid) > 15:
        out.append(len(mid))
    out += mid
    out += c.weights_digest
    out += encode_varint(c.width)
    out += encode_varint(c.height)
    if c.tile_size is not None:
        out += encode_varint(c.tile_size[0])
        out += encode_varint(c.tile_size[1])
    if chunks:
        out += encode_varint(len(chunks))
        for kind, payload in chunks:
            out.append(kind)
            out += encode_varint(len(payload))
            out += payload
    if c.colour.has_alpha:
        assert c.alpha_method is not None and c.alpha_data is not None
        out.append(int(c.alpha_method))
        out += encode_varint(len(c.alpha_data))
        out += c.alpha_data
    header_end = len(out)
    for i, t in enumerate(c.tiles):
        if not all(t.streams):
            raise ValueError("model streams must not be empty")
        out += encode_varint(t.z_shape[0])
        out += encode_varint(t.z_shape[1])
        last = len(t.streams) - (1 if i == len(c.tiles) - 1 else 0)
        for stream in t.streams[:last]:  # the very last stream runs to the CRC
            out += encode_varint(len(stream))
    out += (c.check_crc & 0xFFFFFFFF).to_bytes(4, "little")
    table_end = len(out)
    for t in c.tiles:
        for stream in t.streams:
            out += stream
    out += zlib.crc32(out).to_bytes(4, "little")
    c.stats = {
        "file_bytes": len(out),
        "header_bytes": header_end,
        "tile_table_bytes": table_end - header_end,
        "payload_bytes": c.payload_bytes,
        "overhead_bytes": len(out) - c.payload_bytes,
    }
    return bytes(out)


def _chunks_of(c: Container) -> list[tuple[int, bytes]]:
    """The metadata chunks of ``c`` as (type, stored bytes), in type order."""
    if c.icc_profile is not None and c.srgb:
        raise ValueError("an image has an ICC profile or the sRGB flag, not both")
    out: list[tuple[int, bytes]] = []
    if c.icc_profile is not None:
        out.append((Chunk.ICC, zlib.compress(c.icc_profile, 9)))
    if c.srgb:
        out.append((Chunk.SRGB, b"\x01"))
    if c.exif:
        out.append((Chunk.EXIF, zlib.compress(c.exif, 9)))
    if c.xmp:
        out.append((Chunk.XMP, zlib.compress(c.xmp, 9)))
    if c.text:
        blob = json.dumps([list(kv) for kv in c.text], ensure_ascii=False).encode()
        out.append((Chunk.TEXT, zlib.compress(blob, 9)))
    if c.rate_code is not None:
        if not 0 <= c.rate_code <= QUALITY_CODES:
            raise ValueError(f"rate code {c.rate_code} is outside 0..{QUALITY_CODES}")
        out.append((Chunk.RATE, encode_varint(c.rate_code)))
    n = c.streams_per_tile
    if any(len(t.streams) != n for t in c.tiles) or not 1 <= n <= MAX_STREAMS:
        raise ValueError(f"every tile must hold the same number of streams, 1..{MAX_STREAMS}")
    if n != 2:
        out.append((Chunk.STREAMS, encode_varint(n)))
    return out


def _read_chunks(body: memoryview, pos: int, end: int, c: dict[str, object], version: int) -> int:
    """Parse a version-3 chunk list at ``pos`` into ``c``'s fields; returns the new pos."""
    count, pos = decode_varint(body, pos, "chunk count", MAX_CHUNKS)
    if count == 0:
        raise FormatError("chunk list is empty")
    last = 0
    for _ in range(count):
        if pos >= end:
            raise FormatError("file is truncated (in a metadata chunk)")
        kind = body[pos]
        if kind <= last:
            raise FormatError("metadata chunks are out of order or repeated")
        last = kind
        length, pos = decode_varint(body, pos + 1, f"chunk {kind} length", end - pos - 1)
        if pos + length > end:
            raise FormatError(f"chunk {kind} overruns the file")
        data = body[pos : pos + length]
        pos += length
        if kind == Chunk.ICC:
            c["icc_profile"] = _inflate(data, MAX_ICC_BYTES, "ICC profile")
        elif kind == Chunk.SRGB:
            if bytes(data) != b"\x01":
                raise FormatError("sRGB chunk must be the single byte 1")
            if "icc_profile" in c:
                raise FormatError("file has both an ICC profile and the sRGB flag")
            c["srgb"] = True
        elif kind == Chunk.EXIF:
            c["exif"] = _inflate(data, MAX_METADATA_BYTES, "EXIF")
        elif kind == Chunk.XMP:
            c["xmp"] = _inflate(data, MAX_METADATA_BYTES, "XMP")
        elif kind == Chunk.TEXT:
            c["text"] = _parse_text(_inflate(data, MAX_METADATA_BYTES, "text"))
        elif kind == Chunk.RATE and version >= 5:
            code, used = decode_varint(data, 0, "rate", QUALITY_CODES)
            if used != len(data):
                raise FormatError("rate chunk has trailing bytes")
            c["rate_code"] = code
        elif kind == Chunk.STREAMS and version >= 5:
            count, used = decode_varint(data, 0, "streams per tile", MAX_STREAMS)
            if used != len(data) or count in (0, 2):
                raise FormatError(
                    "streams chunk must hold one count, 1 or 3.."
                    f"{MAX_STREAMS} (2 is the default and not written)"
                )
            c["_streams"] = count
        elif kind & _CRITICAL:
            raise FormatError(
                f"file needs chunk type {kind}, which this licodec does not know; upgrade licodec"
            )
        # other unknown chunks are ancillary: skipped
    return pos


def _parse_text(raw: bytes) -> tuple[tuple[str, str], ...]:
    try:
        items = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FormatError("text chunk is not valid UTF-8 JSON") from None
    if not isinstance(items, list) or not all(
        isinstance(kv, list) and len(kv) == 2 and all(isinstance(x, str) for x in kv)
        for kv in items
    ):
        raise FormatError("text chunk is not a list of [key, value] strings")
    return tuple((k, v) for k, v in items)


# -- parse -----------------------------------------------------------------------


def parse(data: bytes | bytearray | memoryview, max_pixels: int = MAX_PIXELS) -> Container:
    """Parse and validate a ``.lic`` file; raise :class:`FormatError` on anything wrong.

    Checks, in order: size, magic, version, the CRC32 over the whole file, then
    every field against its bound. ``max_pixels`` bounds the declared
    width * height (raise it explicitly for gigantic images).
    """
    buf = bytes(data)
    n = len(buf)
    if n == 0:
        raise FormatError("file is empty")
    if n < len(MAGIC) or buf[: len(MAGIC)] != MAGIC:
        raise FormatError("not a licodec file (wrong magic bytes)")
    if n < len(MAGIC) + 1:
        raise FormatError("file is truncated (no format version)")
    version = buf[len(MAGIC)]
    if version == 0:
        raise FormatError("not a licodec file (format version 0)")
    if version > FORMAT_VERSION:
        raise FormatError(
            f"file uses format version {version}, newer than this licodec reads "
            f"({FORMAT_VERSION}); upgrade licodec"
        )
    if n < _MIN_FILE:
        raise FormatError(f"file is truncated ({n} bytes)")
    stored_crc = int.from_bytes(buf[-4:], "little")
    if zlib.crc32(memoryview(buf)[:-4]) != stored_crc:
        raise FormatError("file is truncated or corrupt (CRC32 mismatch)")
    end = n - 4  # everything below reads within buf[:end]
    body = memoryview(buf)[:end]
    pos = len(MAGIC) + 1

    flags = body[pos]
    qm = body[pos + 1]
    pos += 2
    colour = ColourMode(flags & 0x3)
    has_icc = bool(flags & 0x4)
    tiled = bool(flags & 0x8)
    id_len = flags >> 4
    if id_len == 0:
        if pos >= end:
            raise FormatError("file is truncated (in the model id)")
        id_len = body[pos]
        pos += 1
        if id_len <= 15:
            raise FormatError("model id length is not canonically encoded")
        if id_len > MAX_MODEL_ID:
            raise FormatError(f"model id is too long ({id_len} bytes)")
    if version >= 2:
        quality, portable = qm & MAX_QUALITY, bool(qm & _PORTABLE_BIT)
    else:
        quality, portable = qm & 0x3F, False
    metric_code = qm >> 6
    if metric_code == 3:
        raise FormatError("reserved metric code 3")
    metric = METRICS[metric_code]
    if pos + id_len + 8 > end:
        raise FormatError("file is truncated (in the model id)")
    raw_id = bytes(body[pos : pos + id_len])
    pos += id_len
    try:
        model_id = raw_id.decode("ascii")
    except UnicodeDecodeError:
        raise FormatError("model id is not ASCII") from None
    if not _MODEL_ID_RE.match(model_id):
        raise FormatError(f"model id {model_id!r} contains invalid characters")
    digest = bytes(body[pos : pos + 8])
    pos += 8

    width, pos = decode_varint(body, pos, "width", max_pixels)
    height, pos = decode_varint(body, pos, "height", max_pixels)
    if width < 1 or height < 1:
        raise FormatError(f"image size {width}x{height} is empty")
    if width * height > max_pixels:
        raise FormatError(
            f"declared image size {width}x{height} exceeds the limit of {max_pixels} pixels"
        )
    tile_size: tuple[int, int] | None = None
    if tiled:
        tw, pos = decode_varint(body, pos, "tile width", MAX_TILE_SIDE)
        th, pos = decode_varint(body, pos, "tile height", MAX_TILE_SIDE)
        if tw < 1 or th < 1:
            raise FormatError(f"tile size {tw}x{th} is empty")
        if tw > width or th > height or (tw == width and th == height):
            raise FormatError(f"tile size {tw}x{th} does not fit image {width}x{height}")
        tile_size = (tw, th)
    elif width > MAX_TILE_SIDE or height > MAX_TILE_SIDE:
        raise FormatError(f"untiled image {width}x{height} exceeds the tile limit")
    n_tiles = math.ceil(width / tile_size[0]) * math.ceil(height / tile_size[1]) if tile_size else 1
    # Every tile costs at least 3 table bytes and 1 stream byte (one stream per tile;
    # 4 and 2 with the usual two): a cheap bound on the tile count that comes before
    # any per-tile allocation.
    if n_tiles * 4 + 3 > end - pos:
        raise FormatError(f"file is too short for its {n_tiles} tiles")

    meta: dict[str, object] = {}
    if has_icc and version >= 3:  # bit 2: a chunk list
        pos = _read_chunks(body, pos, end, meta, version)
    elif has_icc:  # bit 2: one ICC chunk
        icc_len, pos = decode_varint(body, pos, "ICC chunk length", end - pos)
        if icc_len == 0:
            raise FormatError("ICC chunk is empty")
        meta["icc_profile"] = _inflate(body[pos : pos + icc_len], MAX_ICC_BYTES, "ICC profile")
        pos += icc_len

    alpha_method: AlphaMethod | None = None
    alpha_data: bytes | None = None
    if colour.has_alpha:
        if pos >= end:
            raise FormatError("file is truncated (in the alpha chunk)")
        try:
            alpha_method = AlphaMethod(body[pos])
        except ValueError:
            raise FormatError(f"unknown alpha method {body[pos]}") from None
        pos += 1
        alpha_len, pos = decode_varint(body, pos, "alpha chunk length", end - pos)
        if alpha_len == 0:
            raise FormatError("alpha chunk is empty")
        if alpha_method is AlphaMethod.CONSTANT and alpha_len != 1:
            raise FormatError("constant alpha chunk must be 1 byte")
        alpha_data = bytes(body[pos : pos + alpha_len])
        pos += alpha_len
    header_end = pos

    rects = tile_rects(width, height, tile_size)
    n_streams = meta.pop("_streams", 2)
    assert isinstance(n_streams, int)
    names = stream_names(n_streams)
    entries: list[tuple[int, int, list[int]]] = []
    for i, (_, _, tw_i, th_i) in enumerate(rects):
        bh, bw = latent_shape_bound(th_i, tw_i)
        zh, pos = decode_varint(body, pos, f"tile {i} latent height", bh)
        zw, pos = decode_varint(body, pos, f"tile {i} latent width", bw)
        if zh < 1 or zw < 1:
            raise FormatError(f"tile {i} latent shape {zh}x{zw} is empty")
        lengths = []
        for j in range(n_streams - (1 if i == len(rects) - 1 else 0)):
            length, pos = decode_varint(body, pos, f"tile {i} {names[j]} stream length", end - pos)
            lengths.append(length)
        entries.append((zh, zw, lengths))
    if pos + 4 > end:
        raise FormatError("file is truncated (in the decode checksum)")
    check_crc = int.from_bytes(body[pos : pos + 4], "little")
    pos += 4
    table_end = pos

    tiles: list[TileRecord] = []
    for i, (zh, zw, lengths) in enumerate(entries):
        if len(lengths) < n_streams:  # the very last stream runs to the CRC
            lengths.append(end - pos - sum(lengths))
        if min(lengths) < 1 or pos + sum(lengths) > end:
            raise FormatError(f"tile {i} streams overrun the file (truncated or corrupt)")
        streams = []
        for length in lengths:
            streams.append(bytes(body[pos : pos + length]))
            pos += length
        tiles.append(TileRecord((zh, zw), *streams))
    if pos != end:
        raise FormatError(f"{end - pos} unexpected bytes after the last tile")

    c = Container(
        model_id=model_id,
        weights_digest=digest,
        width=width,
        height=height,
        colour=colour,
        tiles=tiles,
        check_crc=check_crc,
        quality=quality,
        metric=metric,
        tile_size=tile_size,
        alpha_method=alpha_method,
        alpha_data=alpha_data,
        portable=portable,
        version=version,
        **meta,  # type: ignore[arg-type]
    )
    c.stats = {
        "file_bytes": n,
        "header_bytes": header_end,
        "tile_table_bytes": table_end - header_end,
        "payload_bytes": c.payload_bytes,
        "overhead_bytes": n - c.payload_bytes,
    }
    return c


def _inflate(data: bytes | memoryview, limit: int, what: str) -> bytes:
    """zlib-decompress at most ``limit`` bytes; the stream must end exactly."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(bytes(data), limit)
    except zlib.error:
        raise FormatError(f"{what} chunk is corrupt") from None
    if d.unconsumed_tail or not d.eof or d.unused_data:
        raise FormatError(f"{what} chunk is corrupt or larger than {limit} bytes")
    if not out:
        raise FormatError(f"{what} chunk is empty")
    return out
