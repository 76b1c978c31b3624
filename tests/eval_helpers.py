"""Helpers for the test_eval_* tests: generated 8-bit images written as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from codec_helpers import photo
from PIL import Image


def smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """A deterministic photo-like RGB image (the codec tests' generator)."""
    return photo(height, width, seed)


def write_images(directory: Path, count: int, height: int, width: int, seed: int = 0) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        p = directory / f"img{i:02d}.png"
        Image.fromarray(smooth_image(height, width, seed + i)).save(p)
        paths.append(p)
    return paths


def tiny_weights(path: Path, gain: float, quality: int, seed: int = 0) -> Path:
    """Save an untrained ``wacnn-tiny`` whose rate is set by ``gain``.

    An untrained model codes almost nothing (its latents round to zero);
    scaling the last convolution of the analysis transform by ``gain`` makes
    the latents, and so the file, larger (about 0.8 bpp at gain 8 and 2 bpp
    at 16 on smooth images), which the size-matching tests need.
    """
    import torch

    from licodec.models import create_model
    from licodec.zoo.weights import save_weights

    torch.manual_seed(seed)
    model = create_model("wacnn-tiny").eval()
    last = [m for m in model.g_a.children() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.mul_(gain)
        if last.bias is not None:
            last.bias.mul_(gain)
    model.update(force=True)
    return save_weights(
        model, path, {"quality": quality, "lambda": 0.001 * quality, "metric": "mse"}
    )
