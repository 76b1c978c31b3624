"""Shared fixtures: where ../shared is, and small deterministic images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    return Path(os.environ.get("LICODEC_SHARED", REPO.parent / "shared"))


@pytest.fixture
def shared() -> Path:
    """The project's shared data folder; tests using it skip when it is absent."""
    path = shared_dir()
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is absent (set LICODEC_SHARED)")
    return path


def pytest_configure(config: pytest.Config) -> None:
    # One intra-op thread: results do not depend on the machine's core count,
    # and parallel test workers or background jobs do not oversubscribe.
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def smooth_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A (1, 3, h, w) image in [0, 1] with smooth structure and some texture.

    Learned codecs see natural-image statistics; pure noise would make every
    rate comparison meaningless.
    """
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, max(h // 16, 2), max(w // 16, 2), generator=g)
    img = torch.nn.functional.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)
    img = img + 0.03 * torch.randn(1, 3, h, w, generator=g)
    return img.clamp(0, 1)
