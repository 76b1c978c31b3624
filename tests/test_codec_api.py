"""The Python API on the tiny registered models: bit-exact round trips in every mode."""

from __future__ import annotations

import copy
import io
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from codec_helpers import (  # noqa: F401 (one_thread is an autouse fixture)
    TINY_MODELS,
    forward_expected,
    one_thread,
    photo,
    png_bytes,
    tiny_model,
    weights_file,
)
from PIL import Image, ImageCms
from rans_helpers import rans_files

import licodec
from licodec.codec.api import NO_WEIGHTS_MESSAGE, Codec, file_info
from licodec.codec.container import parse, serialise, tile_rects
from licodec.errors import FormatError, ModelError


def _refresh_crc(data: bytes) -> bytes:
    return data[:-4] + zlib.crc32(data[:-4]).to_bytes(4, "little")


ODD_SIZES = ((1, 1), (37, 53), (130, 257))


@pytest.mark.parametrize("name", TINY_MODELS)
def test_round_trip_odd_sizes_bit_exact(name: str) -> None:
    model = tiny_model(name)
    codec = Codec(model, quality=3, metric="mse")
    for h, w in ODD_SIZES:
        rgb = photo(h, w, seed=h)
        result = codec.encode(Image.fromarray(rgb), keep_reconstruction=True)
        decoded = np.asarray(licodec.decompress(result.data, model=model))
        assert decoded.shape == (h, w, 3)
        # what the encoder predicted, and what the model's forward pass predicts
        assert np.array_equal(decoded, np.asarray(result.reconstruction))
        assert np.array_equal(decoded, forward_expected(model, rgb, False, [(0, 0, w, h)]))
        assert result.tiles == 1 and result.stats["overhead_bytes"] < 40
        assert result.bpp == pytest.approx(len(result.data) * 8 / (h * w))
        info = file_info(result.data)
        assert (info["format_version"], info["coder"]) == (5, "range")
        assert (info["model"], info["quality"], info["metric"]) == (name, 3, "mse")
        assert (info["width"], info["height"], info["colour"]) == (w, h, "RGB")


def _mode_cases(tmp_path: Path) -> dict[str, tuple[object, str]]:
    rgb = photo(21, 34, seed=5)
    alpha = np.random.default_rng(1).integers(0, 256, (21, 34), dtype=np.uint8)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 CCW to display
    jpg = tmp_path / "exif.jpg"
    Image.fromarray(rgb).save(jpg, quality=90, exif=exif.tobytes())
    cmyk = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(cmyk, "TIFF")
    return {
        "RGB": (Image.fromarray(rgb), "RGB"),
        "L": (Image.fromarray(rgb[:, :, 1]), "L"),
        "LA": (Image.fromarray(np.dstack([rgb[:, :, 0], alpha]), "LA"), "LA"),
        "RGBA": (Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), "RGBA"),
        "P": (png_bytes(Image.fromarray(rgb).quantize(32)), "RGB"),
        "CMYK": (cmyk.getvalue(), "RGB"),
        "I;16": (png_bytes(Image.fromarray(rgb[:, :, 2].astype(np.uint16) * 257)), "L"),
        "EXIF": (str(jpg), "RGB"),
        "ICC": (png_bytes(Image.fromarray(rgb), icc_profile=icc), "RGB"),
    }


def test_every_mode_round_trips_bit_exact(tmp_path: Path) -> None:
    model = tiny_model("wacnn-tiny")
    codec = Codec(model)
    for label, (source, out_mode) in _mode_cases(tmp_path).items():
        result = codec.encode(source, keep_reconstruction=True)  # type: ignore[arg-type]
        img = codec.decompress(result.data)
        assert img.mode == out_mode, label
        assert np.array_equal(np.asarray(img), np.asarray(result.reconstruction)), label
        src = licodec.codec.image_io.load_image(source)  # type: ignore[arg-type]
        gray = src.colour.channels == 1
        rgb = src.pixels if not gray else np.repeat(src.pixels[:, :, None], 3, axis=2)
        expected = forward_expected(model, rgb, gray, [(0, 0, src.width, src.height)])
        arr = np.asarray(img)
        colour = arr if img.mode in ("L", "RGB") else arr[..., :-1].reshape(expected.shape)
        assert np.array_equal(colour, expected), label
        if src.alpha is not None:  # alpha is lossless
            assert np.array_equal(np.asarray(img)[..., -1], src.alpha), label
        # the standard sRGB profile travels as a flag and comes back as licodec's copy
        std = licodec.codec.image_io.srgb_profile()
        assert (img.info.get("icc_profile") == std) == (label == "ICC"), label
        if label == "EXIF":
            assert img.size == (21, 34)  # rotated to display orientation
        if label in ("P", "CMYK", "I;16"):
            assert len(result.notices) == 1, label
        if label == "RGB":  # the one-call API gives the same bytes as a reused Codec
            assert licodec.compress(source, model=model) == result.data


def test_multi_tile_round_trip_matches_forward_per_tile() -> None:
    model = tiny_model("stf-tiny")
    rgb = photo(100, 150, seed=3)
    codec = Codec(model, tile_size=64)
    seen: list[tuple[int, int]] = []
    result = codec.encode(rgb, keep_reconstruction=True, progress=lambda d, t: seen.append((d, t)))
    c = parse(result.data)
    assert c.tile_size == (64, 64) and result.tiles == 6 and seen[-1] == (6, 6)
    decoded = np.asarray(codec.decompress(result.data))
    assert np.array_equal(decoded, np.asarray(result.reconstruction))
    rects = tile_rects(150, 100, c.tile_size)
    assert np.array_equal(decoded, forward_expected(model, rgb, False, rects))
    # tiles are independent: re-encoding one tile alone gives the same streams
    x, y, w, h = rects[4]
    alone = Codec(model).encode(np.ascontiguousarray(rgb[y : y + h, x : x + w]))
    assert parse(alone.data).tiles[0] == c.tiles[4]


@pytest.mark.parametrize("name", TINY_MODELS)
def test_decoding_with_one_or_two_threads_is_identical(name: str) -> None:
    model = tiny_model(name)
    rgb = photo(40, 70, seed=9)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        result = Codec(model).encode(rgb, keep_reconstruction=True)
        one = np.asarray(Codec(model).decompress(result.data))
        torch.set_num_threads(2)
        two = np.asarray(Codec(model).decompress(result.data))
        encoded_two = Codec(model).encode(rgb).data
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(one, two)
    assert np.array_equal(one, np.asarray(result.reconstruction))
    assert encoded_two == result.data


def test_weights_mismatch_and_numerics_mismatch_fail_cleanly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from licodec.codec import api

    model = tiny_model("wacnn-tiny")
    data = Codec(model).compress(photo(20, 30))
    other_seed = tiny_model("wacnn-tiny", seed=1)
    with pytest.raises(ModelError, match="encoded with wacnn-tiny weights .* loaded weights are"):
        Codec(other_seed).decompress(data)
    with pytest.raises(ModelError, match="needs model wacnn-tiny, but the given weights are stf"):
        Codec(tiny_model("stf-tiny")).decompress(data)
    # Same digest but entropy parameters that come out differently (what another
    # platform's float32 arithmetic can do to a file coded without --portable):
    drifted = copy.deepcopy(model)
    with torch.no_grad():
        list(drifted.h_scale_s.parameters())[-1].add_(0.5)
    model_digest = api._digest(model)
    monkeypatch.setattr(api, "_digest", lambda m: model_digest)  # every model "matches"
    with pytest.raises(ModelError, match="decode checksum mismatch"):
        Codec(drifted).decompress(data)
    # Synthesis drift leaves the latents intact: the file still decodes, to other pixels
    shifted = copy.deepcopy(model)
    with torch.no_grad():
        list(shifted.g_s.parameters())[-1].add_(0.02)  # last bias: +5 grey levels
    ref = np.asarray(Codec(model).decompress(data), dtype=int)
    assert np.abs(np.asarray(Codec(shifted).decompress(data), dtype=int) - ref).max() >= 4
    # A tampered decode checksum (file CRC fixed up) is caught the same way
    c = parse(data)
    c.check_crc ^= 1
    with pytest.raises(ModelError, match="checksum mismatch"):
        Codec(model).decompress(serialise(c))


def test_digest_follows_loaded_weights() -> None:
    # Regression: the digest was cached on the model and survived load_state_dict,
    # so files were labelled with the old weights' digest and refused by the right ones.
    from licodec.zoo.weights import weights_digest

    a, b = tiny_model("wacnn-tiny"), tiny_model("wacnn-tiny", seed=1)
    before = weights_digest(a)
    assert before != weights_digest(b)
    a.load_state_dict(b.state_dict())
    assert weights_digest(a) == weights_digest(b) != before
    data = Codec(a).compress(photo(16, 24))
    assert parse(data).weights_digest == weights_digest(b)
    assert Codec(b).decompress(data).size == (24, 16)
    with torch.no_grad():
        next(a.parameters()).add_(1.0)  # an in-place edit invalidates it too
    assert weights_digest(a) != weights_digest(b)


def test_unknown_model_and_missing_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from licodec.zoo import pretrained

    monkeypatch.setattr(pretrained, "_weights_dir", lambda: tmp_path)  # an empty zoo
    model = tiny_model("wacnn-tiny")
    c = parse(Codec(model).compress(photo(8, 8)))
    c.model_id = "no-such-model"
    with pytest.raises(ModelError, match="does not know"):
        licodec.decompress(serialise(c))
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        licodec.compress(photo(8, 8), model="nope")
    for kwargs in ({}, {"model": "stf"}, {"model": "stf", "quality": 3}):
        with pytest.raises(ModelError) as info:
            licodec.compress(photo(8, 8), **kwargs)
        assert str(info.value) == NO_WEIGHTS_MESSAGE
    with pytest.raises(ModelError, match="no pretrained weights"):
        licodec.decompress(Codec(model).compress(photo(8, 8)))


def test_weights_file_api_and_corrupt_tile(tmp_path: Path) -> None:
    path = weights_file(tmp_path, "wacnn-tiny", quality=4, metric="ms-ssim")
    codec = Codec(weights=path)
    data = codec.compress(photo(40, 50))
    info = file_info(data)
    assert (info["model"], info["quality"], info["metric"]) == ("wacnn-tiny", 4, "ms-ssim")
    img = licodec.decompress(data, weights=path)
    assert img.size == (50, 40)
    (tmp_path / "x.lic").write_bytes(data)
    assert np.array_equal(np.asarray(codec.decompress(tmp_path / "x.lic")), np.asarray(img))
    with pytest.raises(ModelError, match="does not match the weights file"):
        Codec("stf-tiny", weights=path).load()
    with pytest.raises(ModelError, match="quality 3 does not match"):
        Codec(None, 3, weights=path).load()
    # A crafted file with a valid CRC whose latent shape disagrees with its pixels
    c = parse(data)
    assert c.tiles[0].z_shape == (1, 1)  # 40x50 pads to 64x64, z is /64
    c.tiles[0] = type(c.tiles[0])((2, 3), c.tiles[0].z_stream, c.tiles[0].y_stream)
    # refused from the header (decoder limits, issue 18): the model codes 50x40 as 1x1
    with pytest.raises(FormatError, match="latent shape 2x3 does not fit its 50x40 pixels"):
        codec.decompress(serialise(c))
    big = Codec(weights=path).compress(photo(130, 140))
    c = parse(big)
    assert c.tiles[0].z_shape == (3, 3)
    c.tiles[0] = type(c.tiles[0])((1, 1), c.tiles[0].z_stream, c.tiles[0].y_stream)
    with pytest.raises(FormatError, match="latent shape 1x1 does not fit its 140x130 pixels"):
        codec.decompress(serialise(c))


def test_crafted_streams_with_valid_crc_fail_cleanly() -> None:
    """Random z/y streams behind a valid file CRC: a clean error, never a crash or an image."""
    import random

    model = tiny_model("stf-tiny")
    c0 = parse(Codec(model).compress(photo(60, 70)))
    rng = random.Random(0)
    for k in range(12):
        c = parse(serialise(c0))
        t = c.tiles[0]
        z = t.z_stream if k % 2 else rng.randbytes(rng.choice([1, 3, 8]))
        y = rng.randbytes(rng.choice([1, 2, 4, 9, 200]))
        c.tiles[0] = type(t)(t.z_shape, z, y)
        with pytest.raises((ModelError, FormatError)):
            Codec(model).decompress(serialise(c))


def test_version_1_files_decode_with_their_pixel_checksum() -> None:
    """licodec 0.1 wrote float32 files whose check was a CRC32 of the decoded pixels."""
    model = tiny_model("wacnn-tiny")
    image = photo(40, 70, seed=6)
    with rans_files():  # version 1 files hold CompressAI rANS streams
        res = Codec(model, portable=False).encode(image, keep_reconstruction=True)
    c = parse(res.data)
    at = c.stats["header_bytes"] + c.stats["tile_table_bytes"] - 4  # the check field
    pixels = np.asarray(res.reconstruction, dtype=np.uint8)
    v1 = bytearray(res.data)
    v1[2] = 1
    v1[at : at + 4] = zlib.crc32(pixels.tobytes()).to_bytes(4, "little")

    def fixed(b: bytearray) -> bytes:
        return bytes(b[:-4]) + zlib.crc32(bytes(b[:-4])).to_bytes(4, "little")

    assert parse(fixed(v1)).version == 1
    assert np.array_equal(np.asarray(Codec(model).decompress(fixed(v1))), pixels)
    v1[at] ^= 1
    with pytest.raises(ModelError, match="written by licodec 0.1"):
        Codec(model).decompress(fixed(v1))
    with pytest.raises(ValueError, match="can only write format version 5"):
        serialise(parse(fixed(v1)))


def test_a_model_with_more_streams_round_trips_through_the_file() -> None:
    """The container holds whatever list of streams a model writes (issue 14): a model
    that adds a third stream gets it back, in its own order, when the file is decoded."""
    from licodec.models import create_model

    torch.manual_seed(0)
    model = create_model("wacnn-tiny").eval()
    model.update(force=True)
    extra = b"LICX" * 3
    compress, decompress = model.compress, model.decompress

    def three(*args: object, **kwargs: object) -> object:
        out = compress(*args, **kwargs)  # type: ignore[arg-type]
        out.strings = [*out.strings, [extra]]
        return out

    def back(strings: list[list[bytes]], *args: object, **kwargs: object) -> object:
        assert [list(map(bytes, s)) for s in strings[2:]] == [[extra]]
        return decompress(strings[:2], *args, **kwargs)  # type: ignore[arg-type]

    model.compress, model.decompress = three, back  # type: ignore[method-assign]
    img = photo(90, 150, seed=3)
    codec = Codec(model, tile_size=64)
    res = codec.encode(img, keep_reconstruction=True)
    c = parse(res.data)
    assert c.streams_per_tile == 3 and all(t.streams[0] == extra for t in c.tiles)
    assert np.array_equal(np.asarray(codec.decode(res.data)), np.asarray(res.reconstruction))
