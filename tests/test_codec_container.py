"""The .lic container: round trip, overhead, and a parser that fails cleanly on bad bytes."""

from __future__ import annotations

import random
import time
import zlib

import pytest

from licodec.codec.container import (
    FORMAT_VERSION,
    MAGIC,
    AlphaMethod,
    Chunk,
    ColourMode,
    Container,
    TileRecord,
    decode_varint,
    encode_varint,
    parse,
    serialise,
    tile_rects,
)
from licodec.errors import FormatError


def _streams(seed: int, z_len: int, y_len: int) -> tuple[bytes, bytes]:
    rng = random.Random(seed)
    return rng.randbytes(z_len), rng.randbytes(y_len)


def _container(
    width: int = 768,
    height: int = 512,
    tile_size: tuple[int, int] | None = None,
    colour: ColourMode = ColourMode.RGB,
    model_id: str = "stf-lite",
    icc: bytes | None = None,
    z_len: int = 200,
    y_len: int = 20000,
    **meta: object,
) -> Container:
    rects = tile_rects(width, height, tile_size)
    tiles = []
    for i, (_, _, w, h) in enumerate(rects):
        z, y = _streams(i, z_len, y_len)
        tiles.append(TileRecord((-(-h // 64), -(-w // 64)), z, y))
    alpha_method = alpha_data = None
    if colour.has_alpha:
        alpha_method, alpha_data = AlphaMethod.ZLIB, zlib.compress(bytes(width * height))
    return Container(
        model_id=model_id,
        weights_digest=bytes(range(8)),
        width=width,
        height=height,
        colour=colour,
        tiles=tiles,
        check_crc=0xDEADBEEF,
        quality=5,
        metric="ms-ssim",
        tile_size=tile_size,
        icc_profile=icc,
        alpha_method=alpha_method,
        alpha_data=alpha_data,
        **meta,  # type: ignore[arg-type]
    )


def _refresh_crc(data: bytes | bytearray) -> bytes:
    body = bytes(data[:-4])
    return body + zlib.crc32(body).to_bytes(4, "little")


def test_varint_round_trip_and_canonical() -> None:
    for v in (0, 1, 127, 128, 300, 16383, 16384, 2**28, 2**40):
        enc = encode_varint(v)
        assert decode_varint(enc, 0, "x", 2**41) == (v, len(enc))
    assert len(encode_varint(127)) == 1 and len(encode_varint(128)) == 2
    with pytest.raises(FormatError, match="canonical"):
        decode_varint(b"\x81\x00", 0, "x", 1000)  # 1 padded with a zero group
    with pytest.raises(FormatError, match="out of range"):
        decode_varint(encode_varint(1001), 0, "x", 1000)
    with pytest.raises(FormatError, match="truncated"):
        decode_varint(b"\x81", 0, "x", 1000)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"width": 1, "height": 1},
        {"colour": ColourMode.L, "width": 37, "height": 53},
        {"colour": ColourMode.RGBA, "icc": b"icc-profile-bytes" * 40},
        {"colour": ColourMode.LA, "width": 2500, "height": 300, "tile_size": (1024, 300)},
        {"width": 6000, "height": 4000, "tile_size": (1024, 1024), "model_id": "tcm-l"},
        {"model_id": "a-model-id-longer-than-fifteen-bytes"},
        {
            "exif": b"MM\x00*" + bytes(40),
            "xmp": b"<x:xmpmeta/>",
            "srgb": True,
            "text": (("Title", "Łódź"), ("Comment", "")),
        },
        {"icc": b"icc" * 9, "text": (("k", "v"),)},
    ],
)
def test_serialise_parse_round_trip(kwargs: dict) -> None:
    c = _container(**kwargs)
    data = serialise(c)
    d = parse(data)
    for name in (
        "model_id",
        "weights_digest",
        "width",
        "height",
        "colour",
        "tiles",
        "check_crc",
        "quality",
        "metric",
        "tile_size",
        "icc_profile",
        "srgb",
        "exif",
        "xmp",
        "text",
        "alpha_method",
        "alpha_data",
        "portable",
    ):
        assert getattr(d, name) == getattr(c, name), name
    assert d.version == FORMAT_VERSION
    assert d.stats == c.stats


def test_portable_bit_and_quality_share_a_byte() -> None:
    for portable in (False, True):
        for quality in (0, 1, 6, 31):
            c = _container()
            c.portable, c.quality = portable, quality
            d = parse(serialise(c))
            assert (d.portable, d.quality, d.metric) == (portable, quality, "ms-ssim")
    c = _container()
    c.quality = 32
    with pytest.raises(ValueError, match="0..31"):
        serialise(c)


def test_version_1_2_and_3_files_still_parse() -> None:
    """Version 1 (licodec 0.1) had a 6-bit quality and no portable bit; version 2 had one
    ICC chunk where version 3 has a chunk list; version 4 has version 3's layout with
    range-coded streams. Without metadata, all else is the same."""
    c = _container()
    c.quality, c.portable = 5, True
    v4 = bytearray(serialise(c))
    assert v4[2] == FORMAT_VERSION == 5
    v4[2] = 4  # version 5 without a RATE chunk is version 4's layout
    assert parse(_refresh_crc(v4)).coder == "range"
    v3 = bytearray(v4)
    v3[2] = 3
    d = parse(_refresh_crc(v3))
    assert (d.version, d.coder, d.quality, d.portable, d.tiles) == (3, "rans", 5, True, c.tiles)
    v2 = bytearray(v3)
    v2[2] = 2
    d = parse(_refresh_crc(v2))
    assert (d.version, d.coder, d.quality, d.portable, d.tiles) == (2, "rans", 5, True, c.tiles)
    with pytest.raises(ValueError, match="only write format version 5"):
        serialise(d)  # a parsed older file cannot be relabelled
    v1 = bytearray(v2)
    v1[2] = 1
    v1[4] = (v1[4] & 0xC0) | 37  # quality 37 sets the bit that is "portable" in version 2
    d = parse(_refresh_crc(v1))
    assert (d.version, d.quality, d.portable, d.metric) == (1, 37, False, "ms-ssim")
    assert d.check_crc == c.check_crc and d.tiles == c.tiles


def test_overhead_single_tile_rgb_under_40_bytes_for_every_model_id() -> None:
    """768x512 single-tile RGB, realistic stream sizes, every registered model id."""
    from licodec.models import list_models

    worst = 0
    for model_id in list_models():
        for z_len, y_len in ((100, 5000), (600, 60000)):
            c = _container(model_id=model_id, z_len=z_len, y_len=y_len)
            data = serialise(c)
            overhead = len(data) - c.payload_bytes
            worst = max(worst, overhead)
            assert overhead == c.stats["overhead_bytes"]
            # magic 2, version, flags, quality/metric, digest 8, two CRC32s = 21 fixed
            # bytes; + id + width/height varints (2+2) + z shape (2) + z length varint
            expected = 21 + len(model_id) + 4 + 2 + len(encode_varint(z_len))
            assert overhead == expected, (model_id, overhead)
    assert worst < 40


def test_parse_rejects_bad_headers() -> None:
    good = serialise(_container())
    cases = {
        b"": "empty",
        b"\x89PNG\r\n\x1a\n" + bytes(100): "wrong magic",
        b"LICENSE text file": "wrong magic",
        MAGIC: "truncated",
        MAGIC + bytes([FORMAT_VERSION + 1]) + good[3:]: "newer",
        MAGIC + b"\x00" + good[3:]: "version 0",
        good[:-1]: "truncated or corrupt",
        good[:30]: "truncated or corrupt",
        good + b"\x00": "truncated or corrupt",
    }
    for data, message in cases.items():
        with pytest.raises(FormatError, match=message):
            parse(data)


def _with_header(
    width: int, height: int, *, tiled: tuple[int, int] | None = None, extra: bytes = b""
) -> bytes:
    """A hand-built file with a valid CRC and the given (possibly absurd) geometry."""
    mid = b"stf-lite"
    flags = ColourMode.RGB | (0x8 if tiled else 0) | (len(mid) << 4)
    out = bytearray(MAGIC) + bytes([FORMAT_VERSION, flags, 0]) + mid + bytes(8)
    out += encode_varint(width) + encode_varint(height)
    if tiled:
        out += encode_varint(tiled[0]) + encode_varint(tiled[1])
    out += extra + bytes(4)
    return _refresh_crc(out)


def test_parse_rejects_absurd_sizes_without_allocating() -> None:
    cases = [
        (_with_header(0, 10), "out of range|empty"),
        (_with_header(10, 0), "empty"),
        (_with_header(1 << 20, 1 << 20), "exceeds the limit"),
        (_with_header(2**40, 1), "out of range"),
        (_with_header(5000, 10), "tile limit"),
        (_with_header(60000, 4000, tiled=(1, 1)), "too short for its 240000000 tiles"),
        (_with_header(100, 100, tiled=(100, 100)), "does not fit"),
        (_with_header(100, 100, tiled=(0, 10)), "empty"),
        (_with_header(100, 100, tiled=(5000, 10)), "out of range"),
    ]
    for data, message in cases:
        t0 = time.perf_counter()
        with pytest.raises(FormatError, match=message):
            parse(data)
        assert time.perf_counter() - t0 < 0.1
    # An explicit, larger limit admits the size (and then fails on the missing tiles).
    with pytest.raises(FormatError, match="too short for its 32 tiles"):
        parse(_with_header(1 << 15, 1 << 14, tiled=(4096, 4096)), max_pixels=1 << 30)


def test_parse_rejects_inconsistent_fields_with_valid_crc() -> None:
    c = _container(width=200, height=100)
    data = bytearray(serialise(c))
    id_at = 5  # magic 2 + version + flags + quality/metric
    # metric code 3 is reserved
    bad = bytearray(data)
    bad[4] |= 0xC0
    with pytest.raises(FormatError, match="reserved metric"):
        parse(_refresh_crc(bad))
    # upper-case / non-ASCII model id
    bad = bytearray(data)
    bad[id_at] = ord("S")
    with pytest.raises(FormatError, match="invalid characters"):
        parse(_refresh_crc(bad))
    bad[id_at] = 0xFF
    with pytest.raises(FormatError, match="not ASCII"):
        parse(_refresh_crc(bad))
    # latent shape far larger than the tile
    tc = _container(width=200, height=100)
    tc.tiles[0] = TileRecord((500, 2), tc.tiles[0].z_stream, tc.tiles[0].y_stream)
    with pytest.raises(FormatError, match="latent height is out of range"):
        parse(serialise(tc))
    # stream lengths that overrun the file
    c1 = _container(width=200, height=100, z_len=3, y_len=3)
    raw = bytearray(serialise(c1))
    table = raw.index(bytes([2, 4, 3]), 20)  # z shape 2x4, z length 3
    raw[table + 2] = 100
    with pytest.raises(FormatError, match="z stream length is out of range"):
        parse(_refresh_crc(raw))
    raw[table + 2] = 6  # fits the file, but leaves nothing for the y stream
    with pytest.raises(FormatError, match="overrun"):
        parse(_refresh_crc(raw))
    # unknown alpha method
    ca = _container(width=20, height=10, colour=ColourMode.RGBA)
    raw = bytearray(serialise(ca))
    pos = raw.index(zlib.compress(bytes(200))) - 2
    assert raw[pos] == AlphaMethod.ZLIB
    raw[pos] = 9
    with pytest.raises(FormatError, match="alpha method"):
        parse(_refresh_crc(raw))


def _mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(7)
    if kind == 0:  # flip 1-8 bits
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # overwrite a byte in the header region with an extreme value
        i = rng.randrange(min(len(b), 48))
        b[i] = rng.choice([0x00, 0x7F, 0x80, 0xFF, rng.randrange(256)])
    elif kind == 2:  # truncate
        b = b[: rng.randrange(len(b))]
    elif kind == 3:  # insert random bytes
        i = rng.randrange(len(b) + 1)
        b[i:i] = rng.randbytes(rng.randint(1, 16))
    elif kind == 4:  # delete a run
        i = rng.randrange(len(b))
        del b[i : i + rng.randint(1, 16)]
    elif kind == 5:  # splice with another valid file
        other = rng.choice(pool)
        i = rng.randrange(len(b))
        b = b[:i] + other[rng.randrange(len(other)) :]
    else:  # run of continuation bytes (varint bombs)
        i = rng.randrange(min(len(b), 48))
        b[i : i + 12] = b"\xff" * 12
    return bytes(b)


def test_fuzz_parser_only_raises_format_error() -> None:
    """Thousands of mutated files: FormatError or a consistent parse, never anything else."""
    pool = [
        serialise(_container(width=40, height=30, z_len=12, y_len=60)),
        serialise(_container(width=130, height=257, tile_size=(64, 128), z_len=5, y_len=20)),
        serialise(
            _container(width=9, height=7, colour=ColourMode.LA, icc=b"P" * 300, z_len=4, y_len=9)
        ),
        serialise(_container(width=3, height=2, colour=ColourMode.RGBA, model_id="x" * 20)),
    ]
    rng = random.Random(1234)
    n_cases = 20000
    outcomes = {"error": 0, "parsed": 0}
    messages: set[str] = set()
    t0 = time.perf_counter()
    for k in range(n_cases):
        data = _mutate(rng, rng.choice(pool), pool)
        if k % 2 and len(data) >= 4:
            data = _refresh_crc(data)  # get past the CRC to exercise the field checks
        try:
            c = parse(data)
        except FormatError as exc:
            outcomes["error"] += 1
            text = str(exc)
            assert text and "\n" not in text
            messages.add(text.split(" (")[0][:40])
            continue
        outcomes["parsed"] += 1
        assert c.width * c.height <= 1 << 28
        assert len(c.tiles) == len(tile_rects(c.width, c.height, c.tile_size))
        assert all(t.z_stream and t.y_stream for t in c.tiles)
        assert c.payload_bytes < len(data)
    elapsed = time.perf_counter() - t0
    assert outcomes["error"] > n_cases // 2
    assert len(messages) >= 15  # the fuzzer reaches many different checks
    assert elapsed < 20, f"fuzzing took {elapsed:.1f} s"


def test_metadata_chunks_cost_and_checks() -> None:
    base = len(serialise(_container()))
    c = _container(srgb=True)
    assert len(serialise(c)) == base + 4  # count, type, length, flag
    c = _container(icc=b"x", srgb=True)
    with pytest.raises(ValueError, match="not both"):
        serialise(c)
    data = bytearray(serialise(_container(xmp=b"<x/>")))
    # magic, version, flags, quality byte, id, digest, width, height, chunk count, type
    at = 5 + len("stf-lite") + 8 + len(encode_varint(768)) + len(encode_varint(512)) + 1
    assert data[at] == Chunk.XMP
    for kind, msg in (
        (0x7E, None),
        (0xFE, "needs chunk type 254"),
        (0x00, "out of order"),
        (Chunk.TEXT, "not valid UTF-8 JSON"),
        (Chunk.SRGB, "single byte 1"),
    ):
        bad = bytearray(data)
        bad[at] = kind
        if msg is None:  # an unknown ancillary chunk is skipped
            assert parse(_refresh_crc(bad)).xmp is None
        else:
            with pytest.raises(FormatError, match=msg):
                parse(_refresh_crc(bad))


# -- streams per tile --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3, 5])
def test_tiles_hold_any_number_of_streams(n: int) -> None:
    c = _container(1000, 700, tile_size=(512, 512))
    for i, t in enumerate(c.tiles):
        c.tiles[i] = TileRecord(t.z_shape, *(bytes([i, j]) * (8 + 3 * j) for j in range(n)))
    data = serialise(c)
    back = parse(data)
    assert back.streams_per_tile == n
    assert [t.streams for t in back.tiles] == [t.streams for t in c.tiles]
    assert back.payload_bytes == c.payload_bytes
    assert bytes([0x87, 1, n]) in data[: len(data) - c.payload_bytes]  # the STREAMS chunk


def test_two_streams_write_no_streams_chunk_and_keep_their_layout() -> None:
    c = _container(300, 200)
    data = serialise(c)
    assert bytes([0x87]) not in data[: len(data) - c.payload_bytes]  # no STREAMS chunk
    # the layout of earlier versions: z, then y, the y length implied for the last tile
    assert data[-4 - c.payload_bytes : -4] == c.tiles[0].z_stream + c.tiles[0].y_stream


def test_streams_chunk_is_checked() -> None:
    c = _container(300, 200)
    c.tiles[0] = TileRecord(c.tiles[0].z_shape, b"abcdefgh", b"ijklmnop", b"qrstuvwx")
    data = bytearray(serialise(c))
    at = data.index(bytes([0x87, 1, 3]))  # type, length, count
    for bad, message in [(2, "2 is the default"), (0, "1 or 3..16"), (17, "streams per tile")]:
        broken = bytearray(data)
        broken[at + 2] = bad
        with pytest.raises(FormatError, match=message):
            parse(_refresh_crc(broken))
    mixed = _container(1000, 700, tile_size=(512, 512))
    mixed.tiles[0] = TileRecord(mixed.tiles[0].z_shape, b"abcd", b"efgh", b"ijkl")
    with pytest.raises(ValueError, match="same number of streams"):
        serialise(mixed)
