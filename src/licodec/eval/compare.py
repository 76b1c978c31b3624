"""Side-by-side crops of a learned model and classical codecs at the same file size.

Numbers hide artefacts; this figure shows them. The whole image is coded by
every codec to a real file, and the same crop of each decoded image is drawn
next to the original, labelled with the file's bpp and PSNR.

Sizes are matched on real bytes: the learned model's file is made first (with
several weights, the one whose size is closest to the requested bpp), then
each classical codec's quality knob is searched (bisection over the knob's
range; integer knobs try the two values around the target) for the file
whose length is closest to the learned file's, which lands within 5 % unless
the knob's steps are too coarse or the size is out of the codec's reach
(then the figure says by how much it missed). Without a learned model the
classical codecs are matched to the requested bpp.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from licodec.errors import InputError

__all__ = [
    "SIZE_TOLERANCE",
    "Panel",
    "default_crop",
    "match_size",
    "parse_crop",
    "render_compare",
    "run_compare",
]

#: Relative size difference the comparison promises (and flags beyond).
SIZE_TOLERANCE = 0.05


@dataclass
class Panel:
    """One decoded image in the figure, with the numbers of its file."""

    label: str
    codec: str
    setting: str
    num_bytes: int
    bpp: float
    psnr: float
    crop_psnr: float
    pixels: np.ndarray  # (H, W, 3) uint8, the whole decoded image
    size_error: float = 0.0  # (bytes - target) / target

    @property
    def on_target(self) -> bool:
        return abs(self.size_error) <= SIZE_TOLERANCE

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "codec": self.codec,
            "setting": self.setting,
            "bytes": self.num_bytes,
            "bpp": self.bpp,
            "psnr-rgb": self.psnr,
            "crop-psnr-rgb": self.crop_psnr,
            "size_error": self.size_error,
        }


def parse_crop(text: str) -> tuple[int, int, int, int]:
    """``"x,y,w,h"`` -> integers (InputError when malformed)."""
    try:
        parts = [int(v) for v in text.split(",")]
    except ValueError:
        raise InputError(f"--crop: expected x,y,w,h in pixels, got {text!r}") from None
    if len(parts) != 4:
        raise InputError(f"--crop: expected 4 numbers x,y,w,h, got {len(parts)}")
    x, y, w, h = parts
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise InputError(f"--crop: x,y must be >= 0 and w,h >= 1, got {text}")
    return x, y, w, h


def default_crop(width: int, height: int, side: int = 256) -> tuple[int, int, int, int]:
    """A centred square of ``side`` pixels (or the whole image when it is smaller)."""
    w, h = min(side, width), min(side, height)
    return (width - w) // 2, (height - h) // 2, w, h


def _check_crop(crop: tuple[int, int, int, int], width: int, height: int) -> None:
    x, y, w, h = crop
    if x + w > width or y + h > height:
        raise InputError(f"--crop {x},{y},{w},{h} reaches outside the {width}x{height} image")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    from licodec.eval.metrics import psnr

    return psnr(a, b)


def _crop(px: np.ndarray, crop: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = crop
    return np.ascontiguousarray(px[y : y + h, x : x + w])


def match_size(
    codec: Any, rgb: np.ndarray, target_bytes: float, max_steps: int = 24
) -> tuple[float, bytes]:
    """The knob value (and its file) whose size is closest to ``target_bytes``.

    File size grows with quality for every codec here; a bisection over the
    codec's ``knob_range`` finds the two neighbouring settings around the
    target and the closer one wins. Continuous knobs stop once within 1 %.
    """
    cache: dict[float, bytes] = {}

    def encode(v: float) -> bytes:
        if v not in cache:
            cache[v] = codec.encode(rgb, v)
        return cache[v]

    def err(v: float) -> float:
        return abs(len(encode(v)) - target_bytes) / target_bytes

    lo_k, hi_k = (float(v) for v in codec.knob_range)
    if codec.integer_knob:
        values = list(range(int(lo_k), int(hi_k) + 1))
        if not codec.higher_is_better:
            values.reverse()
        lo, hi = 0, len(values) - 1
        if len(encode(values[hi])) <= target_bytes:
            return values[hi], encode(values[hi])
        if len(encode(values[lo])) >= target_bytes:
            return values[lo], encode(values[lo])
        while hi - lo > 1:  # invariant: size(lo) < target < size(hi)
            half = (lo + hi) // 2
            if len(encode(values[half])) < target_bytes:
                lo = half
            else:
                hi = half
        pick = min((values[lo], values[hi]), key=err)
        return pick, encode(pick)

    # Continuous knob (JPEG 2000's target bpp): bisection in log space.
    a, b = math.log(lo_k), math.log(hi_k)
    best = math.exp((a + b) / 2)
    for _ in range(max_steps):
        mid = math.exp((a + b) / 2)
        if err(mid) < err(best):
            best = mid
        if err(best) <= 0.01:
            break
        if len(encode(mid)) < target_bytes:
            a = math.log(mid)
        else:
            b = math.log(mid)
    return best, encode(best)


def _learned_panel(
    rgb: np.ndarray,
    points: Sequence[Any],
    target_bpp: float | None,
    tile_size: int | None,
    crop: tuple[int, int, int, int],
    progress: Callable[[str], None],
    device: str = "cpu",
) -> Panel:
    from licodec.codec.tiling import DEFAULT_TILE_SIZE
    from licodec.eval.evaluate import point_codec

    n_px = rgb.shape[0] * rgb.shape[1]
    if len(points) > 1 and target_bpp is None:
        raise InputError("--bpp is needed to choose among several weights")
    best: tuple[float, Any, Any] | None = None
    codecs: dict[str, Any] = {}
    for point in points:
        progress(point.label)
        codec = point_codec(point, tile_size or DEFAULT_TILE_SIZE, codecs, device)
        result = codec.encode(rgb, keep_alpha=False, keep_reconstruction=True)
        bpp = 8.0 * len(result.data) / n_px
        score = abs(math.log(bpp / target_bpp)) if target_bpp else 0.0
        if best is None or score < best[0]:
            best = (score, point, result)
    assert best is not None
    _, point, result = best
    pixels = np.asarray(result.reconstruction.convert("RGB"), dtype=np.uint8)
    setting = f"q{point.quality}" if point.quality is not None else Path(point.weights).name
    return Panel(
        label=f"licodec {point.arch} {setting}",
        codec=point.arch,
        setting=setting,
        num_bytes=len(result.data),
        bpp=8.0 * len(result.data) / n_px,
        psnr=_psnr(rgb, pixels),
        crop_psnr=_psnr(_crop(rgb, crop), _crop(pixels, crop)),
        pixels=pixels,
    )


def run_compare(
    rgb: np.ndarray,
    *,
    bpp: float | None = None,
    points: Sequence[Any] = (),
    codecs: Sequence[str] = ("jpeg", "webp", "jpeg2000", "avif", "jxl", "hevc"),
    crop: tuple[int, int, int, int] | None = None,
    tile_size: int | None = None,
    progress: Callable[[str], None] | None = None,
    device: str = "cpu",
) -> tuple[list[Panel], tuple[int, int, int, int], float]:
    """Code ``rgb`` with the learned ``points`` and every codec; return the panels.

    Returns (panels, crop, target bpp). The learned panel (if any) comes first
    and sets the target size; otherwise ``bpp`` does. ``device``: where the
    learned model runs (the classical codecs run as they always do).
    """
    from licodec.eval.baselines import get_codec
    from licodec.eval.metrics import to_uint8_rgb

    rgb = to_uint8_rgb(rgb)
    h, w = rgb.shape[:2]
    n_px = h * w
    if bpp is not None and not (math.isfinite(bpp) and bpp > 0):
        raise InputError(f"--bpp must be a positive number, got {bpp}")
    if not points and bpp is None:
        raise InputError("give --bpp, or a learned model whose file size sets the target")
    crop = crop or default_crop(w, h)
    _check_crop(crop, w, h)
    selected = [get_codec(c) for c in codecs]
    for c in selected:
        why = c.available()
        if why:
            raise InputError(f"codec {c.name} is unavailable: {why}")
    note = progress or (lambda _msg: None)

    panels: list[Panel] = []
    if points:
        learned = _learned_panel(rgb, points, bpp, tile_size, crop, note, device)
        panels.append(learned)
        target_bytes = float(learned.num_bytes)
    else:
        assert bpp is not None
        target_bytes = bpp * n_px / 8.0
    if target_bytes < 1:
        raise InputError(f"--bpp {bpp} is below one byte for a {w}x{h} image")
    for c in selected:
        note(c.name)
        value, data = match_size(c, rgb, target_bytes)
        decoded = c.decode(data)
        shown = f"{value:.3g}" if not c.integer_knob else str(int(value))
        panels.append(
            Panel(
                label=c.label,
                codec=c.name,
                setting=f"{c.knob} {shown}",
                num_bytes=len(data),
                bpp=8.0 * len(data) / n_px,
                psnr=_psnr(rgb, decoded),
                crop_psnr=_psnr(_crop(rgb, crop), _crop(decoded, crop)),
                pixels=decoded,
                size_error=(len(data) - target_bytes) / target_bytes,
            )
        )
    return panels, crop, 8.0 * target_bytes / n_px


def _db(v: float) -> str:
    return "inf dB" if math.isinf(v) else f"{v:.2f} dB"


def render_compare(
    rgb: np.ndarray,
    panels: Sequence[Panel],
    crop: tuple[int, int, int, int],
    output: str | Path,
    *,
    title: str | None = None,
    columns: int = 5,
    dpi: int = 150,
) -> None:
    """Draw the image with the crop marked, the original crop and every panel's crop."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from licodec.eval.plot import check_figure_path, save_figure

    out = check_figure_path(output)
    x, y, w, h = crop
    n = len(panels) + 2
    rows = math.ceil(n / columns)
    cols = math.ceil(n / rows)  # balanced rows: 9 panels as 5 + 4, not 4 + 4 + 1
    cell = 3.2
    fig = Figure(figsize=(cell * cols, (cell * h / w + 0.7) * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_axis_off()

    axes[0].imshow(rgb)
    axes[0].add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="red", lw=1.5))
    axes[0].set_title(f"image {rgb.shape[1]}x{rgb.shape[0]}", fontsize=9)
    axes[1].imshow(_crop(rgb, crop), interpolation="nearest")
    axes[1].set_title(f"original crop\n{w}x{h} at ({x}, {y})", fontsize=9)
    for ax, p in zip(axes[2:], panels):
        ax.imshow(_crop(p.pixels, crop), interpolation="nearest")
        miss = "" if p.on_target else f"  [size {p.size_error:+.1%}]"
        ax.set_title(
            f"{p.label}\n{p.bpp:.3f} bpp, {_db(p.psnr)} (crop {_db(p.crop_psnr)}){miss}",
            fontsize=8,
            color="black" if p.on_target else "darkred",
        )
    for ax in axes[:n]:
        ax.set_axis_on()
        for side in ax.spines.values():
            side.set_visible(False)
    fig.suptitle(
        (title + "\n" if title else "")
        + "bpp from real file sizes; PSNR (RGB) over the whole image, crop PSNR in brackets",
        fontsize=10,
    )
    save_figure(fig, out, dpi)
