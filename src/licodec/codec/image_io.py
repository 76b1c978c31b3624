"""Reading images into what the codec codes, and building the decoded image.

The codec codes 8-bit RGB through the model; everything else is mapped onto
that with a one-line notice where information changes (palette, CMYK, 16-bit,
1-bit, other colour spaces). Grayscale is kept as grayscale (coded once through
the RGB model, restored as ``L``); alpha is kept losslessly beside the lossy
colour; EXIF orientation is applied (and its tag removed, so it is applied once);
the ICC profile, EXIF, XMP and PNG text chunks are carried through unless the
caller strips them (``keep_metadata``). The standard sRGB profile travels as a
one-byte flag and comes back as licodec's copy (``srgb.icc``).
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from licodec.codec.container import (
    MAX_ICC_BYTES,
    MAX_METADATA_BYTES,
    MAX_PIXELS,
    AlphaMethod,
    ColourMode,
)
from licodec.errors import FormatError, InputError

__all__ = [
    "ImageSource",
    "SourceImage",
    "decode_alpha",
    "encode_alpha",
    "encode_image",
    "image_extensions",
    "load_image",
    "output_format",
    "read_rgb",
    "register_plugins",
    "to_pil",
]

#: What :func:`load_image` accepts: a path, encoded bytes, a binary file, a PIL
#: image, or a uint8 array (H x W, H x W x 1/2/3/4).
ImageSource = Union[str, "os.PathLike[str]", bytes, bytearray, IO[bytes], Image.Image, np.ndarray]

_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N", "I"}

#: What ``keep_metadata`` may be: everything, the colour profile only, or nothing.
METADATA_CHOICES = ("all", "icc", "none")
_EXIF_PREFIX = b"Exif\x00\x00"
_XMP_KEY = "XML:com.adobe.xmp"  # how PNG stores XMP (an iTXt chunk)


def srgb_profile() -> bytes:
    """licodec's standard sRGB profile: LittleCMS's built-in sRGB (588 bytes, fixed date)."""
    return (Path(__file__).parent / "srgb.icc").read_bytes()


def is_standard_srgb(icc: bytes) -> bool:
    """Whether ``icc`` is the standard sRGB profile up to its creation date and profile ID.

    Those two header fields (bytes 24-35 and 84-99) say nothing about colour, so
    such a profile can travel as a one-byte flag.
    """
    ref = srgb_profile()
    return len(icc) == len(ref) and (icc[:24], icc[36:84], icc[100:]) == (
        ref[:24],
        ref[36:84],
        ref[100:],
    )


@dataclass
class SourceImage:
    """An image ready for coding: 8-bit colour planes, optional alpha, ICC."""

    pixels: np.ndarray  # H x W x 3 (RGB) or H x W (L), uint8, C-contiguous
    colour: ColourMode
    alpha: np.ndarray | None = None  # H x W uint8 when colour has alpha
    icc_profile: bytes | None = None
    notices: list[str] = field(default_factory=list)
    name: str = "<image>"
    exif: bytes | None = None  # TIFF structure without the "Exif\0\0" prefix
    xmp: bytes | None = None
    text: tuple[tuple[str, str], ...] = ()  # PNG text chunks

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    def rgb_tile(self, x: int, y: int, w: int, h: int) -> np.ndarray:
        """H x W x 3 uint8 view/copy of one tile (grayscale replicated to 3 channels)."""
        t = self.pixels[y : y + h, x : x + w]
        if t.ndim == 2:
            t = np.repeat(t[:, :, None], 3, axis=2)
        return t


def register_plugins() -> None:
    """Teach Pillow JPEG XL when pillow-jxl-plugin is installed; the one place that does,
    called before anything opens or lists images."""
    with contextlib.suppress(ImportError):
        import pillow_jxl  # noqa: F401  (registers on import)


def image_extensions() -> frozenset[str]:
    """File extensions Pillow can open (lower case, with the dot): the one list that the
    codec, training and evaluation use to pick images out of a folder."""
    register_plugins()
    exts = Image.registered_extensions()
    return frozenset(e.lower() for e, fmt in exts.items() if fmt in Image.OPEN)


def read_rgb(source: ImageSource, name: str | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image exactly as the codec reads it (orientation
    applied, 16-bit rounded to 8, alpha dropped, grey replicated): training,
    evaluation and the metrics all read pixels this one way."""
    pixels = load_image(source, keep_alpha=False, name=name, keep_metadata="none").pixels
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    return pixels


def _open(source: ImageSource, name: str) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise InputError(f"{name}: input is empty")
        fp: Any = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            raise InputError(f"{name}: is a directory")
        try:
            # Read it whole: the image is decoded in memory anyway, and no file
            # handle stays open behind the returned image.
            raw = path.read_bytes()
        except FileNotFoundError:
            raise InputError(f"{name}: no such file") from None
        except PermissionError:
            raise InputError(f"{name}: permission denied") from None
        except OSError as exc:
            raise InputError(f"{name}: cannot open ({exc.strerror or exc})") from None
        if not raw:
            raise InputError(f"{name}: file is empty")
        fp = io.BytesIO(raw)
    else:
        fp = source
    register_plugins()
    try:
        img = Image.open(fp)
        img.load()
    except UnidentifiedImageError:
        raise InputError(f"{name}: not an image that Pillow can read") from None
    except Image.DecompressionBombError:
        raise InputError(
            f"{name}: image is too large (Pillow's decompression-bomb limit)"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{name}: cannot read image ({msg})") from None
    return img


def _to_uint8_16bit(img: Image.Image) -> np.ndarray:
    a = np.asarray(img)
    a = np.clip(a.astype(np.int64), 0, 65535)
    return ((a * 255 + 32767) // 65535).astype(np.uint8)


def _cmyk_to_rgb(img: Image.Image, icc: bytes | None, notices: list[str]) -> Image.Image:
    why = "it has no ICC profile"
    if icc:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            out = ImageCms.profileToProfile(img, src, dst, outputMode="RGB")
            if out is not None:
                notices.append("CMYK image converted to sRGB through its ICC profile")
                return out
            why = "its ICC profile could not be applied"
        except Exception as exc:  # noqa: BLE001 - a broken profile falls back to the formula
            why = f"its ICC profile is unusable: {type(exc).__name__}"
    notices.append(f"CMYK image converted to RGB with the plain formula ({why})")
    return img.convert("RGB")


def _metadata(
    img: Image.Image, text_keys: list[str]
) -> tuple[bytes | None, bytes | None, tuple[tuple[str, str], ...]]:
    """EXIF, XMP and the PNG text chunks ``text_keys`` of an orientation-corrected image."""
    exif = img.info.get("exif")
    if isinstance(exif, bytes) and exif.startswith(_EXIF_PREFIX):
        exif = exif[len(_EXIF_PREFIX) :]
    xmp = img.info.get("xmp")
    text: list[tuple[str, str]] = []
    for k in text_keys:
        v = img.info.get(k)  # the corrected copy: its XMP has lost the orientation too
        if k == _XMP_KEY and not xmp:
            xmp = v
        elif k != _XMP_KEY and isinstance(v, str):
            text.append((str(k), v))
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    return (exif or None) if isinstance(exif, bytes) else None, xmp or None, tuple(text)


def load_image(
    source: ImageSource,
    *,
    keep_alpha: bool = True,
    name: str | None = None,
    keep_metadata: str = "all",
) -> SourceImage:
    """Read ``source`` into a :class:`SourceImage`, normalising its mode.

    ``keep_metadata``: "all" (ICC, EXIF, XMP, PNG text), "icc" or "none".
    Raises :class:`InputError` for anything that is not a readable image.
    """
    if keep_metadata not in METADATA_CHOICES:
        raise ValueError(f"keep_metadata must be one of {METADATA_CHOICES}, not {keep_metadata!r}")
    if name is None:
        name = str(source) if isinstance(source, (str, os.PathLike)) else "<image>"
    notices: list[str] = []
    if isinstance(source, np.ndarray):
        img = _from_array(source, name)
    else:
        img = _open(source, name)
    n_frames = getattr(img, "n_frames", 1)
    if n_frames > 1:
        notices.append(f"image has {n_frames} frames; only the first is coded")
    # PNG text chunks, by key (Pillow's PNG reader also puts them in info)
    text_keys = list(getattr(img, "text", {}) or {}) if img.format == "PNG" else []
    try:
        # Applies the orientation and removes the tag (EXIF and XMP) from the copy's metadata
        img = ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - malformed EXIF: keep the stored orientation
        notices.append("EXIF orientation could not be read; image coded as stored")
    exif, xmp, text = _metadata(img, text_keys) if keep_metadata == "all" else (None, None, ())
    w, h = img.size
    if w < 1 or h < 1:
        raise InputError(f"{name}: image is empty ({w}x{h})")
    if w * h > MAX_PIXELS:
        raise InputError(f"{name}: {w}x{h} exceeds the limit of {MAX_PIXELS} pixels")
    icc = (img.info.get("icc_profile") or None) if keep_metadata != "none" else None
    for what, blob in (("EXIF", exif), ("XMP", xmp)):
        if blob is not None and len(blob) > MAX_METADATA_BYTES:
            notices.append(f"{what} larger than 16 MiB dropped")
    exif = exif if exif is None or len(exif) <= MAX_METADATA_BYTES else None
    xmp = xmp if xmp is None or len(xmp) <= MAX_METADATA_BYTES else None
    if icc is not None and len(icc) > MAX_ICC_BYTES:
        notices.append("ICC profile larger than 16 MiB dropped")
        icc = None

    mode = img.mode
    if mode == "CMYK":
        img = _cmyk_to_rgb(img, icc, notices)
        icc = None  # the pixels are sRGB now
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in img.info
        if img.palette is not None and img.palette.mode in ("RGBA", "LA"):
            has_alpha = True
        img = img.convert("RGBA" if has_alpha else "RGB")
        notices.append(f"palette image converted to {img.mode}")
    elif mode in _SIXTEEN_BIT:
        arr = _to_uint8_16bit(img)
        img = Image.fromarray(arr, "L")
        notices.append(f"{mode} image reduced to 8-bit grayscale")
    elif mode == "F":
        arr = np.clip(np.nan_to_num(np.asarray(img)), 0, 255).round().astype(np.uint8)
        img = Image.fromarray(arr, "L")
        notices.append("floating-point image clipped to 8-bit grayscale")
    elif mode == "1":
        img = img.convert("L")
        notices.append("1-bit image converted to 8-bit grayscale")
    elif mode in ("RGBa", "La"):
        img = img.convert(mode[0:-1] + "A")
        notices.append(f"premultiplied {mode} image converted to {img.mode}")
    elif mode not in ("RGB", "L", "RGBA", "LA"):
        try:
            img = img.convert("RGB")
        except ValueError:
            raise InputError(f"{name}: unsupported image mode {mode}") from None
        notices.append(f"{mode} image converted to RGB")

    alpha: np.ndarray | None = None
    if img.mode in ("RGBA", "LA"):
        if keep_alpha:
            alpha = np.array(img.getchannel("A"), dtype=np.uint8)
        img = img.convert("RGB" if img.mode == "RGBA" else "L")
    if img.mode == "RGB":
        colour = ColourMode.RGBA if alpha is not None else ColourMode.RGB
    else:
        colour = ColourMode.LA if alpha is not None else ColourMode.L
    pixels = np.array(img, dtype=np.uint8)  # a writable copy (torch warns on read-only)
    return SourceImage(pixels, colour, alpha, icc, notices, name, exif, xmp, text)


def _from_array(a: np.ndarray, name: str) -> Image.Image:
    if a.dtype != np.uint8:
        raise InputError(f"{name}: arrays must be uint8, got {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        mode = "L"
    elif a.ndim == 3 and a.shape[2] in (2, 3, 4):
        mode = {2: "LA", 3: "RGB", 4: "RGBA"}[a.shape[2]]
    else:
        raise InputError(f"{name}: array shape {a.shape} is not H x W (x 1/2/3/4)")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"{name}: image is empty ({a.shape[1]}x{a.shape[0]})")
    return Image.fromarray(np.ascontiguousarray(a), mode)


def to_pil(
    pixels: np.ndarray,
    colour: ColourMode,
    alpha: np.ndarray | None = None,
    icc_profile: bytes | None = None,
    *,
    exif: bytes | None = None,
    xmp: bytes | None = None,
    text: tuple[tuple[str, str], ...] = (),
) -> Image.Image:
    """The decoded image: colour planes + alpha, with its metadata in ``info``.

    ``info`` holds what Pillow's readers would put there: ``icc_profile``,
    ``exif`` (with its "Exif" prefix), ``xmp``, and each PNG text chunk by key;
    :func:`encode_image` writes them back.
    """
    img = Image.fromarray(pixels, "RGB" if pixels.ndim == 3 else "L")
    if colour.has_alpha and alpha is not None:
        img.putalpha(Image.fromarray(alpha, "L"))
    for k, v in text:
        img.info[k] = v
    if icc_profile:
        img.info["icc_profile"] = icc_profile
    if exif:
        img.info["exif"] = _EXIF_PREFIX + exif
    if xmp:
        img.info["xmp"] = xmp
    return img


def _save_params(img: Image.Image, fmt: str) -> tuple[dict[str, Any], list[str]]:
    """Pillow save options carrying ``img.info``'s metadata in ``fmt``, and what it drops."""
    params: dict[str, Any] = {}
    dropped: list[str] = []
    info = img.info
    if info.get("icc_profile"):
        params["icc_profile"] = info["icc_profile"]
    exif, xmp = info.get("exif"), info.get("xmp")
    text = [(str(k), v) for k, v in info.items() if isinstance(v, str)]
    if fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        png = PngInfo()
        for k, v in text:
            png.add_itxt(k, v)  # iTXt holds any UTF-8; Pillow reads it back as text
        if xmp:
            png.add_itxt(_XMP_KEY, xmp.decode("utf-8", "replace"))
        params["pnginfo"] = png
        if exif:
            params["exif"] = exif
        return params, dropped
    if exif:
        if fmt in ("JPEG", "WEBP", "TIFF"):
            params["exif"] = exif  # Pillow's WebP writer drops the prefix itself
        else:
            dropped.append("EXIF")
    if xmp:
        if fmt in ("JPEG", "WEBP"):
            params["xmp"] = xmp
        else:
            dropped.append("XMP")
    if text:
        dropped.append("PNG text")
    return params, dropped


# -- alpha plane -----------------------------------------------------------------


def encode_alpha(alpha: np.ndarray) -> tuple[AlphaMethod, bytes]:
    """Smallest lossless representation of an alpha plane (constant, zlib or PNG)."""
    flat = alpha.reshape(-1)
    if (flat == flat[0]).all():
        return AlphaMethod.CONSTANT, bytes([int(flat[0])])
    z = zlib.compress(np.ascontiguousarray(alpha).tobytes(), 9)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(alpha), "L").save(buf, "PNG", compress_level=9)
    png = buf.getvalue()
    return (AlphaMethod.PNG, png) if len(png) < len(z) else (AlphaMethod.ZLIB, z)


def decode_alpha(method: AlphaMethod, data: bytes, width: int, height: int) -> np.ndarray:
    """Inverse of :func:`encode_alpha`; validates the size before allocating."""
    n = width * height
    if method is AlphaMethod.CONSTANT:
        if len(data) != 1:
            raise FormatError("constant alpha chunk must be 1 byte")
        return np.full((height, width), data[0], dtype=np.uint8)
    if method is AlphaMethod.ZLIB:
        d = zlib.decompressobj()
        try:
            raw = d.decompress(data, n)
        except zlib.error:
            raise FormatError("alpha chunk is corrupt") from None
        if len(raw) != n or d.unconsumed_tail or not d.eof or d.unused_data:
            raise FormatError("alpha chunk is corrupt (wrong size)")
        return np.frombuffer(raw, dtype=np.uint8).reshape(height, width).copy()
    try:
        img = Image.open(io.BytesIO(data), formats=["PNG"])
        if img.size != (width, height) or img.mode != "L":
            raise FormatError(
                f"alpha chunk is {img.size[0]}x{img.size[1]} {img.mode}, expected "
                f"{width}x{height} L"
            )
        img.load()
    except FormatError:
        raise
    except Exception:  # noqa: BLE001 - any decoder failure means a corrupt chunk
        raise FormatError("alpha chunk is corrupt") from None
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def output_format(path: str) -> str:
    """The Pillow format ``path``'s extension names (PNG for ``-`` or no extension).

    Called before any decoding, so a bad ``-o`` fails at once. Raises
    :class:`OutputError` for extensions Pillow cannot write.
    """
    from licodec.errors import OutputError

    # registered_extensions() loads every plugin: Image.SAVE is filled lazily, and in a
    # fresh process it does not yet know PNG.
    exts = Image.registered_extensions()
    ext = "" if path == "-" else Path(path).suffix.lower()
    fmt = "PNG" if not ext else exts.get(ext)
    if fmt is None or fmt not in Image.SAVE:
        hint = " (.lic is what compress writes)" if ext == ".lic" else ""
        raise OutputError(
            f"cannot write {path}: unknown image format {ext!r}{hint}; "
            "use .png, .webp, .tif, .bmp or .jpg"
        )
    return fmt


def encode_image(img: Image.Image, path: str, notices: list[str] | None = None) -> bytes:
    """``img`` encoded in the format ``path``'s extension names (PNG for ``-`` or none).

    Metadata the format cannot hold is named in ``notices``. Raises
    :class:`OutputError` for unknown extensions or modes the format cannot hold.
    """
    from licodec.errors import OutputError

    fmt = output_format(path)
    params, dropped = _save_params(img, fmt)
    if dropped and notices is not None:
        notices.append(
            f"{fmt} cannot hold the image's {' and '.join(dropped)}; dropped "
            "(PNG keeps all metadata)"
        )
    if fmt in ("JPEG", "WEBP"):
        params["quality"] = 95
    buf = io.BytesIO()
    try:
        img.save(buf, fmt, **params)
    except (OSError, ValueError, KeyError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OutputError(f"cannot write {path} as {fmt}: {msg}") from None
    return buf.getvalue()
