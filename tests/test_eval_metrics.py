"""PSNR / MS-SSIM / bpp on 8-bit RGB, with hand-computable cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from eval_helpers import smooth_image
from PIL import Image

from licodec.eval import metrics


def test_psnr_of_a_uniform_one_level_error_is_48_13_db() -> None:
    a = smooth_image(40, 56, seed=1)
    a = np.clip(a, 0, 254)
    b = a + 1  # MSE exactly 1 -> 10*log10(255^2)
    assert metrics.psnr(a, b) == pytest.approx(20 * math.log10(255), abs=1e-9)
    assert metrics.psnr(a, a) == math.inf


def test_psnr_accepts_pil_images_and_refuses_floats() -> None:
    a = smooth_image(32, 48, seed=2)
    b = smooth_image(32, 48, seed=3)
    assert metrics.psnr(Image.fromarray(a), Image.fromarray(b)) == pytest.approx(metrics.psnr(a, b))
    with pytest.raises(TypeError):
        metrics.psnr(a / 255.0, b)
    with pytest.raises(ValueError):
        metrics.psnr(a, b[:-1])


def test_unit_float_to_uint8_rounds_like_a_decoder() -> None:
    x = np.full((2, 2, 3), 0.5)
    x[0, 0] = [1.2, -0.1, 10.4 / 255]
    out = metrics.unit_float_to_uint8(x)
    assert out.dtype == np.uint8
    assert out[1, 1, 0] == 128  # 127.5 rounds to even
    assert list(out[0, 0]) == [255, 0, 10]
    # A model's (1, 3, H, W) output tensor gives the same pixels.
    t = torch.from_numpy(x).permute(2, 0, 1).unsqueeze(0)
    assert np.array_equal(metrics.unit_float_to_uint8(t), out)


def test_ms_ssim_linear_and_db() -> None:
    a = smooth_image(176, 192, seed=4)
    rng = np.random.default_rng(0)
    noisy = np.clip(a + rng.normal(0, 6, a.shape), 0, 255).astype(np.uint8)
    assert metrics.ms_ssim(a, a) == pytest.approx(1.0, abs=1e-6)
    ms = metrics.ms_ssim(a, noisy)
    assert 0.8 < ms < 0.999
    db = metrics.ms_ssim_db(ms)
    assert db == pytest.approx(-10 * math.log10(1 - ms))
    assert metrics.ms_ssim_from_db(db) == pytest.approx(ms)
    # Stronger noise must score worse.
    worse = np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    assert metrics.ms_ssim(a, worse) < ms


def test_ms_ssim_refuses_images_too_small_for_five_scales() -> None:
    a = smooth_image(160, 200, seed=5)
    with pytest.raises(ValueError, match="161"):
        metrics.ms_ssim(a, a)


def test_bpp_and_image_metrics() -> None:
    assert metrics.bpp(1000, 80 * 100) == pytest.approx(1.0)
    assert metrics.bpp(3, 48) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        metrics.bpp(10, 0)
    a = smooth_image(48, 64, seed=6)
    m = metrics.image_metrics(a, a ^ 1, num_bytes=384)  # flipping the lowest bit: MSE 1
    assert m["bpp"] == pytest.approx(1.0)
    assert m["psnr-rgb"] == pytest.approx(20 * math.log10(255))
    assert m["ms-ssim-rgb"] is None and m["ms-ssim-db-rgb"] is None  # 48 px < 161 px
    big = smooth_image(168, 168, seed=7)
    m = metrics.image_metrics(big, big ^ 1, num_bytes=100)
    assert 0.99 < m["ms-ssim-rgb"] < 1.0
    assert m["ms-ssim-db-rgb"] == pytest.approx(metrics.ms_ssim_db(m["ms-ssim-rgb"]))
