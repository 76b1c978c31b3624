"""Training: the papers' recipes on PyTorch Lightning, from one CPU to many GPUs.

``licodec.train.config`` (settings, λ tables; no torch import), ``data`` (folder tree of
images, resumable random crops), ``losses`` (rate–distortion), ``module`` (the
LightningModule), ``callbacks`` (logs, validation, atomic checkpoints) and ``trainer``
(:func:`run_training`). The CLI is ``licodec train``; see docs/training.md.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "TrainConfig": "licodec.train.config",
    "resolve_config": "licodec.train.config",
    "recipe_lambda": "licodec.train.config",
    "run_training": "licodec.train.trainer",
    "TrainResult": "licodec.train.trainer",
    "TrainError": "licodec.train.trainer",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'licodec.train' has no attribute {name!r}")
