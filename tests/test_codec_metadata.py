"""Metadata through a .lic file: ICC (sRGB as a flag), EXIF, XMP, PNG text; --strip."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from codec_helpers import one_thread, photo, png_bytes, tiny_model, weights_file  # noqa: F401
from PIL import Image, ImageCms, PngImagePlugin

from licodec.cli.main import main
from licodec.codec.api import Codec, file_info
from licodec.codec.container import parse
from licodec.codec.image_io import encode_image, is_standard_srgb, srgb_profile

XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
    b'22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
    b'tiff:Orientation="6" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Harbour'
    b"</dc:title></rdf:Description></rdf:RDF></x:xmpmeta>"
)


def _camera_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0132] = "2024:05:06 07:08:09"  # DateTime
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 30.0)}  # GPS IFD
    buf = io.BytesIO()
    Image.fromarray(photo(20, 32, seed=4)).save(
        buf, "JPEG", quality=95, exif=exif.tobytes(), xmp=XMP
    )
    return buf.getvalue()


def _reopen(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_exif_and_xmp_survive_and_orientation_is_applied_once() -> None:
    codec = Codec(tiny_model("wacnn-tiny"))
    data = codec.compress(_camera_jpeg())
    info = file_info(data)
    assert info["exif_bytes"] > 0 and info["xmp_bytes"] > 0
    decoded = codec.decompress(data)
    assert decoded.size == (20, 32)  # displayed orientation
    for ext in (".png", ".jpg", ".webp"):
        back = _reopen(encode_image(decoded, "out" + ext))
        exif = back.getexif()
        assert exif[0x010F] == "Canon" and exif[0x0132] == "2024:05:06 07:08:09", ext
        assert 0x0112 not in exif, ext  # applied, so not applied again by a viewer
        assert exif.get_ifd(0x8825)[1] == "N", ext
        xmp = back.info.get("xmp") or back.info.get("XML:com.adobe.xmp")
        xmp = xmp.encode() if isinstance(xmp, str) else xmp
        assert b"<dc:title>Harbour</dc:title>" in xmp and b"Orientation" not in xmp, ext
    # Decoding again gives the same image: the orientation is not applied twice
    again = Codec(tiny_model("wacnn-tiny")).compress(encode_image(decoded, "x.png"))
    assert Codec(tiny_model("wacnn-tiny")).decompress(again).size == (20, 32)


def test_png_text_chunks_round_trip_and_strip_options() -> None:
    pnginfo = PngImagePlugin.PngInfo()
    pnginfo.add_text("Title", "Harbour at dawn")
    pnginfo.add_itxt("Author", "Łukasz Żółw")
    pnginfo.add_text("Software", "")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    src = png_bytes(Image.fromarray(photo(12, 16)), pnginfo=pnginfo, icc_profile=icc)
    codec = Codec(tiny_model("wacnn-tiny"))
    out = _reopen(encode_image(codec.decompress(codec.compress(src)), "x.png"))
    assert out.text == {"Title": "Harbour at dawn", "Author": "Łukasz Żółw", "Software": ""}
    assert out.info["icc_profile"] == icc  # not sRGB: carried byte for byte
    only_icc = parse(codec.compress(src, keep_metadata="icc"))
    assert only_icc.icc_profile == icc and not only_icc.text and only_icc.exif is None
    none = parse(codec.compress(_camera_jpeg(), keep_metadata="none"))
    assert (none.icc_profile, none.exif, none.xmp, none.text, none.srgb) == (
        None,
        None,
        None,
        (),
        False,
    )
    with pytest.raises(ValueError, match="keep_metadata"):
        codec.compress(src, keep_metadata="some")


def test_standard_srgb_profile_costs_a_byte() -> None:
    made_now = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert is_standard_srgb(made_now) and is_standard_srgb(srgb_profile())
    tweaked = bytearray(made_now)
    tweaked[-1] ^= 1
    assert not is_standard_srgb(bytes(tweaked))
    codec = Codec(tiny_model("wacnn-tiny"))
    img = Image.fromarray(photo(16, 16))
    plain = codec.compress(png_bytes(img))
    tagged = codec.compress(png_bytes(img, icc_profile=made_now))
    assert len(tagged) == len(plain) + 4  # was ~370 bytes as a compressed ICC chunk
    assert parse(tagged).srgb and parse(tagged).icc_profile is None
    assert codec.decompress(tagged).info["icc_profile"] == srgb_profile()
    other = codec.compress(png_bytes(img, icc_profile=bytes(tweaked)))
    assert parse(other).icc_profile == bytes(tweaked) and len(other) > len(plain) + 300


def test_cli_strip_and_formats_that_drop_metadata(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = weights_file(tmp_path, "wacnn-tiny")
    (tmp_path / "cam.jpg").write_bytes(_camera_jpeg())
    for flag, expect in (([], True), (["--strip"], False), (["--keep-metadata", "icc"], False)):
        out = tmp_path / f"cam{len(flag)}.lic"
        assert (
            main(
                [
                    "compress",
                    str(tmp_path / "cam.jpg"),
                    "-o",
                    str(out),
                    "--weights",
                    str(w),
                    "--quiet",
                    *flag,
                ]
            )
            == 0
        )
        assert (parse(out.read_bytes()).exif is not None) == expect, flag
    capsys.readouterr()
    assert (
        main(
            [
                "decompress",
                str(tmp_path / "cam0.lic"),
                "-o",
                str(tmp_path / "c.bmp"),
                "--weights",
                str(w),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "BMP cannot hold the image's EXIF and XMP; dropped" in err
    assert main(["info", str(tmp_path / "cam0.lic")]) == 0
    assert "EXIF" in capsys.readouterr().out
    assert np.asarray(Image.open(tmp_path / "c.bmp")).shape == (32, 20, 3)
