"""Rate-distortion plots with matplotlib (rendered with Agg: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from licodec.codec.files import atomic_output
from licodec.errors import InputError, LicodecError, OutputError

__all__ = ["check_figure_path", "plot_rd", "save_figure"]

_YLABEL = {
    "psnr": "PSNR-RGB [dB]",
    "ms-ssim": "MS-SSIM [dB]  (−10·log10(1 − MS-SSIM))",
}


def plot_rd(
    curves: Sequence[Any],
    output: str | Path,
    metric: str = "psnr",
    published: Sequence[Any] = (),
    title: str | None = None,
    xlim: tuple[float, float] | None = None,
    dpi: int = 150,
) -> list[str]:
    """Draw ``curves`` (solid, with markers) and ``published`` ones (dashed) into ``output``.

    Curves without values for ``metric`` are skipped; their names are returned so
    that the caller can say so. The image format follows the file suffix
    (png, pdf, svg).
    """
    # A bare Figure renders with the Agg canvas; pyplot (and a GUI backend) is never needed.
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise LicodecError("plots need matplotlib: pip install 'licodec[eval]'") from None

    if metric not in _YLABEL:
        raise InputError(f"unknown metric {metric!r} (choose from {', '.join(_YLABEL)})")
    out = check_figure_path(output)

    skipped: list[str] = []
    fig = Figure(figsize=(8, 6), layout="constrained")
    ax = fig.add_subplot()
    drawn = 0
    total = len(curves) + len(published)
    if total <= 10:
        cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    else:  # more curves than the default cycle has colours
        tab20 = [matplotlib.colors.to_hex(matplotlib.colormaps["tab20"](i)) for i in range(20)]
        cycle = tab20[0::2] + tab20[1::2]  # the ten strong hues first, then their light twins
    markers = "os^Dv<>pPhX*"
    for i, curve in enumerate(list(curves) + list(published)):
        is_published = i >= len(curves)
        if not curve.has(metric):
            skipped.append(curve.name)
            continue
        x, y = curve.points(metric)
        if xlim:
            keep = (x >= xlim[0] * 0.999) & (x <= xlim[1] * 1.001)
            x, y = x[keep], y[keep]
        label = curve.name + (" (published)" if is_published else "")
        ax.plot(
            x,
            y,
            linestyle="--" if is_published else "-",
            marker=markers[drawn % len(markers)],
            markersize=4 if is_published else 5,
            linewidth=1.3 if is_published else 1.8,
            color=cycle[drawn % len(cycle)],
            label=label,
        )
        drawn += 1
    if not drawn:
        raise InputError(f"no curve has {metric} values to plot")
    ax.set_xlabel("Rate [bpp]", fontsize=12)
    ax.set_ylabel(_YLABEL[metric], fontsize=12)
    if title:
        ax.set_title(title, fontsize=13)
    if xlim:
        ax.set_xlim(*xlim)
    ax.grid(True, which="major", alpha=0.5)
    ax.minorticks_on()
    ax.grid(True, which="minor", alpha=0.15)
    ax.tick_params(labelsize=10)
    ax.legend(loc="lower right", fontsize=9, framealpha=0.9)

    save_figure(fig, out, dpi)
    return skipped


def check_figure_path(output: str | Path) -> Path:
    """``output`` as a Path, checked early: its suffix must name a format we write."""
    out = Path(output)
    if out.suffix.lower().lstrip(".") not in ("png", "pdf", "svg"):
        raise InputError(f"{out}: output must end in .png, .pdf or .svg")
    if out.is_dir():
        raise OutputError(f"{out}: is a directory")
    return out


def save_figure(fig: Any, output: str | Path, dpi: int = 150) -> None:
    """Save a matplotlib Figure atomically (no half-written images)."""
    out = check_figure_path(output)
    with atomic_output(out, mkdir=True) as tmp:
        fig.savefig(tmp, dpi=dpi, format=out.suffix.lower().lstrip("."))
