"""Helpers for the test_codec_* tests: tiny models (built once), images, expectations."""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

TINY_MODELS = ("wacnn-tiny", "stf-tiny", "tcm-tiny")


@pytest.fixture(autouse=True)
def one_thread():
    """Run codec tests on one torch thread (restored afterwards).

    The machine's cores are shared; oversubscribed torch threads make tiny
    models 20x slower. Import this fixture into a test module to use it.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@functools.cache
def tiny_model(name: str, seed: int = 0) -> Any:
    """A registered tiny model with fixed random weights, eval mode, coder tables built."""
    from licodec.models import create_model

    torch.manual_seed(seed)
    model = create_model(name).eval()
    model.update(force=True)
    return model


def weights_file(directory: Path, name: str, seed: int = 0, **meta: Any) -> Path:
    """Save :func:`tiny_model` in licodec's weights format (once per directory)."""
    from licodec.zoo.weights import save_weights

    path = directory / f"{name}-{seed}.safetensors"
    if not path.exists():
        save_weights(tiny_model(name, seed), path, {"quality": 2, "metric": "mse", **meta})
    return path


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A deterministic photo-like RGB uint8 image (smooth fields plus grain)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(max(2, height // 8), max(2, width // 8), 3))
    planes = [
        np.asarray(
            Image.fromarray(coarse[..., c].astype(np.float32), mode="F").resize(
                (width, height), Image.BICUBIC
            )
        )
        for c in range(3)
    ]
    img = np.stack(planes, axis=-1) + rng.normal(0, 4, size=(height, width, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def png_bytes(img: Image.Image, **params: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **params)
    return buf.getvalue()


@torch.no_grad()
def forward_expected(
    model: Any, rgb: np.ndarray, gray: bool, rects: list[tuple[int, int, int, int]]
) -> np.ndarray:
    """The decoded pixels predicted from ``model.forward`` (eval mode), tile by tile.

    Independent of the codec's own encode path: it uses the model's forward
    reconstruction, which the model contract says equals ``decompress(compress(x))``
    (in the portable mode, the codec's default).
    """
    h_img, w_img = rgb.shape[:2]
    out = np.empty((h_img, w_img) if gray else (h_img, w_img, 3), dtype=np.uint8)
    for x, y, w, h in rects:
        t = torch.from_numpy(np.ascontiguousarray(rgb[y : y + h, x : x + w]))
        t = t.permute(2, 0, 1)[None].float() / 255
        x_hat = model(t, portable=True)["x_hat"][0].clamp(0, 1)  # the codec's default mode
        if gray:
            px = (x_hat.mean(dim=0) * 255).round().to(torch.uint8).numpy()
        else:
            px = (x_hat * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        out[y : y + h, x : x + w] = px
    return out
