"""Reading images of every mode, EXIF orientation, ICC, alpha planes, bad inputs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from codec_helpers import photo, png_bytes
from PIL import Image, ImageCms

from licodec.codec.container import AlphaMethod, ColourMode
from licodec.codec.image_io import decode_alpha, encode_alpha, encode_image, load_image, to_pil
from licodec.errors import FormatError, InputError, OutputError


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_rgb_and_gray_pass_through() -> None:
    rgb = photo(9, 13)
    s = load_image(Image.fromarray(rgb))
    assert s.colour is ColourMode.RGB and s.alpha is None and not s.notices
    assert np.array_equal(s.pixels, rgb)
    g = load_image(png_bytes(Image.fromarray(rgb[:, :, 0])))
    assert g.colour is ColourMode.L and g.pixels.shape == (9, 13)
    assert np.array_equal(g.pixels, rgb[:, :, 0])
    # grayscale is coded through the RGB model as three equal planes
    t = g.rgb_tile(2, 3, 5, 4)
    assert t.shape == (4, 5, 3) and (t == rgb[3:7, 2:7, 0:1]).all()


def test_alpha_modes_keep_alpha_exactly() -> None:
    rgba = np.dstack([photo(7, 11), np.arange(77, dtype=np.uint8).reshape(7, 11)])
    s = load_image(png_bytes(Image.fromarray(rgba, "RGBA")))
    assert s.colour is ColourMode.RGBA
    assert np.array_equal(s.alpha, rgba[:, :, 3]) and np.array_equal(s.pixels, rgba[:, :, :3])
    la = load_image(Image.fromarray(rgba[:, :, 2:4], "LA"))
    assert la.colour is ColourMode.LA and np.array_equal(la.alpha, rgba[:, :, 3])
    dropped = load_image(Image.fromarray(rgba, "RGBA"), keep_alpha=False)
    assert dropped.colour is ColourMode.RGB and dropped.alpha is None


def test_palette_cmyk_16bit_1bit_convert_with_one_line_notice() -> None:
    rgb = photo(8, 8)
    p = Image.fromarray(rgb).quantize(16)
    s = load_image(png_bytes(p))
    assert s.colour is ColourMode.RGB and s.notices == ["palette image converted to RGB"]
    assert np.array_equal(s.pixels, np.asarray(p.convert("RGB")))
    p.info["transparency"] = 0
    s = load_image(png_bytes(p, transparency=0))
    assert s.colour is ColourMode.RGBA and s.notices == ["palette image converted to RGBA"]
    assert set(np.unique(s.alpha)) <= {0, 255} and (s.alpha == 0).any()

    cmyk = Image.fromarray(rgb).convert("CMYK")
    buf = io.BytesIO()
    cmyk.save(buf, "TIFF")
    s = load_image(buf.getvalue())
    assert s.colour is ColourMode.RGB and len(s.notices) == 1 and "CMYK" in s.notices[0]
    assert np.abs(s.pixels.astype(int) - np.asarray(cmyk.convert("RGB"))).max() == 0

    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1028).astype(np.uint16)
    deep[0, 0], deep[0, 1] = 65535, 257 * 7
    s = load_image(png_bytes(Image.fromarray(deep)))
    assert s.colour is ColourMode.L and "reduced to 8-bit" in s.notices[0]
    assert s.pixels[0, 0] == 255 and s.pixels[0, 1] == 7 and s.pixels[1, 0] == 32  # 8224/257

    bits = Image.fromarray(rgb[:, :, 0] > 128)
    s = load_image(png_bytes(bits))
    assert s.colour is ColourMode.L and set(np.unique(s.pixels)) <= {0, 255}
    assert s.notices == ["1-bit image converted to 8-bit grayscale"]


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    a = np.zeros((10, 20, 3), dtype=np.uint8)
    a[:, 10:] = 255  # left half black, right half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rot.jpg"
    Image.fromarray(a).save(path, quality=95, exif=exif.tobytes())
    s = load_image(path)
    assert (s.width, s.height) == (10, 20)
    assert s.pixels[:8].mean() < 30 and s.pixels[12:].mean() > 225  # left became top


def test_icc_profile_is_carried() -> None:
    icc = srgb_icc()
    s = load_image(png_bytes(Image.fromarray(photo(5, 6)), icc_profile=icc))
    assert s.icc_profile == icc
    out = to_pil(s.pixels, s.colour, None, s.icc_profile)
    assert out.info["icc_profile"] == icc
    again = Image.open(io.BytesIO(encode_image(out, "x.png")))
    assert again.info.get("icc_profile") == icc


def test_multi_frame_notice() -> None:
    frames = [Image.fromarray(photo(6, 6, seed=i)).quantize(8) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    s = load_image(buf.getvalue())
    assert any("3 frames" in n for n in s.notices)


def test_arrays_and_bad_inputs(tmp_path: Path) -> None:
    assert load_image(np.zeros((3, 4, 4), np.uint8)).colour is ColourMode.RGBA
    cases: list[tuple[object, str]] = [
        (np.zeros((3, 4), np.float32), "uint8"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        (np.zeros((3, 4, 5), np.uint8), "shape"),
        (b"", "empty"),
        (b"this is plain text, not an image", "not an image"),
        (png_bytes(Image.fromarray(photo(30, 30)))[:100], "cannot read image"),
        (str(tmp_path / "missing.png"), "no such file"),
        (str(tmp_path), "is a directory"),
    ]
    (tmp_path / "empty.png").write_bytes(b"")
    cases.append((str(tmp_path / "empty.png"), "empty"))
    for source, message in cases:
        with pytest.raises(InputError, match=message) as info:
            load_image(source)  # type: ignore[arg-type]
        assert "\n" not in str(info.value)


def test_alpha_plane_methods_round_trip() -> None:
    const = np.full((5, 7), 200, np.uint8)
    assert encode_alpha(const) == (AlphaMethod.CONSTANT, bytes([200]))
    smooth = np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))  # PNG's filters win
    noisy = np.random.default_rng(0).integers(0, 2, (40, 40), dtype=np.uint8) * 255
    methods = set()
    for a in (const, smooth, noisy):
        method, data = encode_alpha(a)
        methods.add(method)
        assert np.array_equal(decode_alpha(method, data, a.shape[1], a.shape[0]), a)
    assert methods == {AlphaMethod.CONSTANT, AlphaMethod.PNG, AlphaMethod.ZLIB}
    method, data = encode_alpha(smooth)
    for bad_method, bad_data, w, h in [
        (AlphaMethod.ZLIB, b"\x78\x9cgarbage", 4, 4),
        (AlphaMethod.ZLIB, __import__("zlib").compress(bytes(17)), 4, 4),
        (AlphaMethod.PNG, data, 63, 64),
        (AlphaMethod.PNG, data[: len(data) // 2], 64, 64),
        (AlphaMethod.CONSTANT, b"\x01\x02", 4, 4),
    ]:
        with pytest.raises(FormatError, match="alpha"):
            decode_alpha(bad_method, bad_data, w, h)


def test_encode_image_rejects_unknown_format_and_impossible_mode() -> None:
    img = Image.new("RGBA", (2, 2))
    with pytest.raises(OutputError, match="unknown image format"):
        encode_image(img, "out.xyz")
    with pytest.raises(OutputError, match="as JPEG"):
        encode_image(img, "out.jpg")
    assert encode_image(img, "-")[:8] == b"\x89PNG\r\n\x1a\n"
