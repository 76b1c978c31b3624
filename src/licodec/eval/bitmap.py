"""Where the bits go: a per-pixel map of the rate a learned model spends.

The model's forward pass (eval mode: latents rounded as when coding) gives the
likelihood of every element of ``y`` and ``z``. ``-log2`` of a ``y``
likelihood is the ideal code length of that element; summed over channels it
is the cost of one latent cell, which covers a ``y_stride`` x ``y_stride``
block of the (padded) input. Spreading each cell's bits evenly over the
pixels of its block gives a map in bits per pixel whose sum is exactly the
model's estimated rate for ``y``. Cells that lie wholly in the padding the
model adds are folded into the nearest cell inside the image, so nothing is
dropped. ``z`` (the hyperprior) has no clean spatial footprint of its own at
this resolution; its bits are spread evenly over each tile or reported beside
the map.

Large images are cut into the same tiles the codec uses, so the estimate
matches what ``licodec compress`` codes, minus the container and the
arithmetic coder's small overhead.

:func:`likelihood_map` is also what ``licodec eval --estimate`` uses.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from licodec.errors import InputError, ModelError

if TYPE_CHECKING:
    from licodec.entropy.contract import CodecModel

__all__ = ["BitMap", "cell_density", "likelihood_map", "render_bitmap"]


@dataclass
class BitMap:
    """Estimated bits of one image, per pixel for ``y`` and per tile for ``z``."""

    y_map: np.ndarray  # (H, W) float64: bits of y per pixel
    z_map: np.ndarray  # (H, W) float64: bits of z per pixel (constant over each tile)
    y_bits: float  # sum of -log2 p over y (the likelihood total)
    z_bits: float  # sum of -log2 p over z
    reconstruction: np.ndarray  # (H, W, 3) uint8 from the forward pass
    tiles: int
    seconds: float

    @property
    def height(self) -> int:
        return int(self.y_map.shape[0])

    @property
    def width(self) -> int:
        return int(self.y_map.shape[1])

    @property
    def num_pixels(self) -> int:
        return self.height * self.width

    @property
    def total_bits(self) -> float:
        return self.y_bits + self.z_bits

    @property
    def bpp(self) -> float:
        return self.total_bits / self.num_pixels

    @property
    def y_bpp(self) -> float:
        return self.y_bits / self.num_pixels

    @property
    def z_bpp(self) -> float:
        return self.z_bits / self.num_pixels

    def map(self, include_z: bool = True) -> np.ndarray:
        """Bits per pixel; with ``include_z`` its sum is the whole estimated rate."""
        return self.y_map + self.z_map if include_z else self.y_map.copy()


def _block_index(n: int, offset: int, stride: int, cells: int) -> tuple[np.ndarray, int]:
    """Latent cell of each of ``n`` image rows (or columns), shifted to start at 0.

    ``offset`` is the padding before the image; returns (index per row, first cell).
    """
    idx = (np.arange(n) + offset) // stride
    first = int(idx[0])
    idx = np.clip(idx, 0, cells - 1) - first
    return idx, first


def cell_density(
    cell_bits: np.ndarray, size: tuple[int, int], pads: tuple[int, int, int, int], stride: int
) -> np.ndarray:
    """Spread each latent cell's bits over its pixels inside an ``size`` = (h, w) image.

    ``cell_bits`` is (Hy, Wy) for the padded input, ``pads`` = (left, right,
    top, bottom) the padding the model added, ``stride`` the input pixels per
    latent cell. The result (h, w) sums to ``cell_bits.sum()``.
    """
    h, w = size
    hy, wy = cell_bits.shape
    left, _, top, _ = pads
    rows, r0 = _block_index(h, top, stride, hy)
    cols, c0 = _block_index(w, left, stride, wy)
    n_rows, n_cols = int(rows[-1]) + 1, int(cols[-1]) + 1
    # Fold cells outside the image (all padding) into the nearest cell inside it.
    ri = np.clip(np.arange(hy) - r0, 0, n_rows - 1)
    ci = np.clip(np.arange(wy) - c0, 0, n_cols - 1)
    folded = np.zeros((n_rows, n_cols), dtype=np.float64)
    np.add.at(folded, (ri[:, None], ci[None, :]), cell_bits.astype(np.float64))
    area = np.outer(np.bincount(rows, minlength=n_rows), np.bincount(cols, minlength=n_cols))
    density = folded / area
    return density[rows][:, cols]


def likelihood_map(
    model: CodecModel, rgb: np.ndarray, tile_size: int | None = None, rate: int | None = None
) -> BitMap:
    """Run ``model`` forward on an (H, W, 3) uint8 image, tile by tile as the codec would.

    ``tile_size`` defaults to the codec's default; the tile grid follows
    :func:`licodec.codec.tiling.plan_tiles`. ``rate``: operating point of a
    variable-rate model. The tiles go to the device of the model's parameters.
    """
    import torch

    from licodec.codec.tiling import DEFAULT_TILE_SIZE, plan_tiles, tile_rects
    from licodec.eval.metrics import to_uint8_rgb, unit_float_to_uint8

    rgb = to_uint8_rgb(rgb)
    h, w = rgb.shape[:2]
    pad_multiple = int(model.pad_multiple)
    grid = plan_tiles(w, h, tile_size or DEFAULT_TILE_SIZE, pad_multiple)
    rects = tile_rects(w, h, grid)
    y_map = np.zeros((h, w), dtype=np.float64)
    z_map = np.zeros((h, w), dtype=np.float64)
    recon = np.empty_like(rgb)
    y_bits = z_bits = 0.0
    param = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    device = param.device if param is not None else torch.device("cpu")
    t0 = time.perf_counter()
    with torch.inference_mode():
        for x0, y0, tw, th in rects:
            tile = np.array(rgb[y0 : y0 + th, x0 : x0 + tw])  # writable copy for torch
            xt = torch.from_numpy(tile).to(device).permute(2, 0, 1)[None].float().div_(255)
            try:
                out = model(xt) if rate is None else model(xt, rate)
                lik_y = out["likelihoods"]["y"]
                lik_z = out["likelihoods"]["z"]
            except (RuntimeError, KeyError, TypeError) as exc:
                raise ModelError(f"model forward pass failed: {exc}") from None
            # float64 on the CPU (MPS has no float64)
            cells = (-torch.log2(lik_y.cpu().double())).sum(dim=1)[0].numpy()  # (Hy, Wy)
            tz = float((-torch.log2(lik_z.cpu().double())).sum())
            pads = model.pads_for((th, tw))
            stride = max(1, round((th + pads[2] + pads[3]) / cells.shape[0]))
            y_map[y0 : y0 + th, x0 : x0 + tw] = cell_density(cells, (th, tw), pads, stride)
            z_map[y0 : y0 + th, x0 : x0 + tw] = tz / (th * tw)
            y_bits += float(cells.sum())
            z_bits += tz
            x_hat = out["x_hat"].clamp(0, 1)
            recon[y0 : y0 + th, x0 : x0 + tw] = unit_float_to_uint8(x_hat)
    return BitMap(
        y_map=y_map,
        z_map=z_map,
        y_bits=y_bits,
        z_bits=z_bits,
        reconstruction=recon,
        tiles=len(rects),
        seconds=time.perf_counter() - t0,
    )


def render_bitmap(
    rgb: np.ndarray,
    bitmap: BitMap,
    output: str | Path,
    *,
    layout: str = "beside",
    include_z: bool = True,
    title: str | None = None,
    vmax: float | None = None,
    dpi: int = 150,
) -> None:
    """Draw the bit map beside (``layout="beside"``) or over (``"overlay"``) the image.

    The colour scale is in bits per pixel; ``vmax`` fixes its top (default: the
    99.5th percentile, so a few expensive cells do not wash out the rest).
    """
    from matplotlib.figure import Figure

    from licodec.eval.plot import check_figure_path, save_figure

    if layout not in ("beside", "overlay"):
        raise InputError(f"unknown layout {layout!r} (choose beside or overlay)")
    out = check_figure_path(output)
    h, w = bitmap.height, bitmap.width
    density = bitmap.map(include_z)
    top = float(vmax) if vmax else float(np.percentile(density, 99.5))
    if not math.isfinite(top) or top <= 0:
        top = float(density.max()) or 1.0
    aspect = w / h
    panels = 2 if layout == "beside" else 1
    panel_w = 5.0 if aspect >= 1 else 5.0 * aspect
    fig = Figure(figsize=(panel_w * panels + 1.2, panel_w / aspect + 0.9), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    if layout == "beside":
        axes[0].imshow(rgb)
        axes[0].set_title("image", fontsize=10)
        im = axes[1].imshow(density, cmap="inferno", vmin=0.0, vmax=top, interpolation="nearest")
        axes[1].set_title("bits per pixel", fontsize=10)
    else:
        gray = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        axes[0].imshow(gray, cmap="gray", vmin=0, vmax=255)
        im = axes[0].imshow(
            density, cmap="inferno", vmin=0.0, vmax=top, alpha=0.6, interpolation="nearest"
        )
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.colorbar(im, ax=list(axes), shrink=0.9, pad=0.02)
    bar.set_label("bits per pixel", fontsize=10)
    where = "each tile" if bitmap.tiles > 1 else "the image"
    z_text = (
        f"z's {bitmap.z_bpp:.4f} bpp spread evenly over {where}"
        if include_z
        else f"z's {bitmap.z_bpp:.4f} bpp not in the map"
    )
    caption = (
        f"estimated {bitmap.bpp:.4f} bpp = y {bitmap.y_bpp:.4f} + z {bitmap.z_bpp:.4f} "
        f"(-log2 likelihoods)\n{z_text}"
    )
    fig.suptitle(f"{title}\n{caption}" if title else caption, fontsize=9)
    save_figure(fig, out, dpi)
