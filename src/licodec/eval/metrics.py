"""Image-quality and rate metrics, computed the way published Kodak numbers are.

PSNR is measured on 8-bit RGB (the decoded image rounded to integers, as a
user would save it), averaged over all three channels; MS-SSIM uses
pytorch-msssim (the implementation CompressAI's evaluation uses) on the same
8-bit pixels; bpp counts every byte of the real file over the pixel count.
The learned-model evaluation and the classical baselines share these
functions so that their numbers are comparable.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from licodec.errors import InputError

__all__ = [
    "MS_SSIM_MIN_SIDE",
    "bpp",
    "image_metrics",
    "ms_ssim",
    "ms_ssim_db",
    "ms_ssim_from_db",
    "psnr",
    "to_uint8_rgb",
    "unit_float_to_uint8",
]

# pytorch-msssim's 5-scale MS-SSIM with an 11-tap window needs the shorter
# side to exceed (11 - 1) * 2**4 pixels.
MS_SSIM_MIN_SIDE = 161


def to_uint8_rgb(image: Any) -> np.ndarray:
    """Return ``image`` (PIL image or uint8 array) as a (H, W, 3) uint8 array.

    Float arrays are refused on purpose: whether they are in [0, 1] or
    [0, 255] cannot be guessed; use :func:`unit_float_to_uint8` first.
    """
    from PIL import Image

    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            image = image.convert("RGB")
        return np.asarray(image, dtype=np.uint8)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise TypeError(f"expected a uint8 array or a PIL image, got dtype {arr.dtype}")
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB array, got shape {arr.shape}")
    return arr


def unit_float_to_uint8(x: Any) -> np.ndarray:
    """Round a float image in [0, 1] ((H, W, 3) array, or (3, H, W) / (1, 3, H, W) tensor)
    to the 8-bit pixels a decoder would write to disk."""
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        t = x.detach().cpu()
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise ValueError(f"expected a single image, got a batch of {t.shape[0]}")
            t = t[0]
        if t.ndim != 3 or t.shape[0] != 3:
            raise ValueError(f"expected a (3, H, W) tensor, got shape {tuple(t.shape)}")
        arr = t.permute(1, 2, 0).double().numpy()
    else:
        arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {arr.shape}")
    return np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)


def psnr(original: Any, decoded: Any) -> float:
    """PSNR in dB between two 8-bit RGB images (inf when identical)."""
    a = to_uint8_rgb(original).astype(np.float64)
    b = to_uint8_rgb(decoded).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def ms_ssim(original: Any, decoded: Any) -> float:
    """Linear MS-SSIM (0..1) between two 8-bit RGB images, via pytorch-msssim.

    Raises ValueError for images whose shorter side is below
    ``MS_SSIM_MIN_SIDE`` (five scales do not fit).
    """
    a = to_uint8_rgb(original)
    b = to_uint8_rgb(decoded)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    if min(a.shape[:2]) < MS_SSIM_MIN_SIDE:
        raise ValueError(
            f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIDE} px on the shorter side, "
            f"got {a.shape[1]}x{a.shape[0]}"
        )
    try:
        import torch
        from pytorch_msssim import ms_ssim as _ms_ssim
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise InputError(
            f"MS-SSIM needs torch and pytorch-msssim ({exc.name} missing): "
            "pip install 'licodec[eval]'"
        ) from None

    def as_tensor(arr: np.ndarray) -> Any:
        return torch.from_numpy(arr.astype(np.float32)).permute(2, 0, 1).unsqueeze(0)

    with torch.no_grad():
        value = _ms_ssim(as_tensor(a), as_tensor(b), data_range=255.0, size_average=True)
    return float(value)


def ms_ssim_db(value: float) -> float:
    """MS-SSIM in dB, -10*log10(1 - MS-SSIM), the scale papers plot (inf at 1)."""
    if value >= 1.0:
        return math.inf
    return -10.0 * math.log10(1.0 - value)


def ms_ssim_from_db(db: float) -> float:
    """Inverse of :func:`ms_ssim_db`."""
    return 1.0 - 10.0 ** (-db / 10.0)


def bpp(num_bytes: int, num_pixels: int) -> float:
    """Bits per pixel of a file of ``num_bytes`` bytes holding ``num_pixels`` pixels."""
    if num_pixels <= 0:
        raise ValueError("num_pixels must be positive")
    if num_bytes < 0:
        raise ValueError("num_bytes must be non-negative")
    return 8.0 * num_bytes / num_pixels


def image_metrics(original: Any, decoded: Any, num_bytes: int) -> dict[str, float | None]:
    """All per-image numbers of one coded image, keyed as in CompressAI's results.

    ``ms-ssim-rgb`` (linear) and ``ms-ssim-db-rgb`` are None when the image is too
    small for MS-SSIM; the other keys are always set.
    """
    a = to_uint8_rgb(original)
    b = to_uint8_rgb(decoded)
    out: dict[str, float | None] = {
        "bpp": bpp(num_bytes, a.shape[0] * a.shape[1]),
        "psnr-rgb": psnr(a, b),
        "ms-ssim-rgb": None,
        "ms-ssim-db-rgb": None,
    }
    if min(a.shape[:2]) >= MS_SSIM_MIN_SIDE:
        ms = ms_ssim(a, b)
        out["ms-ssim-rgb"] = ms
        out["ms-ssim-db-rgb"] = ms_ssim_db(ms)
    return out
