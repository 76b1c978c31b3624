"""Pretrained weights shipped inside the package.

``zoo/weights/index.json`` lists every shipped file with what a user needs to
judge it: architecture, quality index, lambda, metric, training data and
steps, digest, and the Kodak rate/PSNR measured with ``licodec eval``. One
entry is the default that ``licodec compress`` uses without flags.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from licodec.errors import ModelError

__all__ = ["NO_WEIGHTS", "ZooEntry", "default_entry", "entries", "resolve", "resolve_entry"]

NO_WEIGHTS = (
    "no pretrained weights are installed; train one with `licodec train` or pass --weights FILE"
)


@dataclass(frozen=True)
class ZooEntry:
    """One shipped weights file."""

    name: str
    arch: str
    quality: int
    file: str
    metric: str = "mse"
    lmbda: float | None = None
    default: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return _weights_dir() / self.file


def _weights_dir() -> Path:
    return Path(str(resources.files("licodec.zoo") / "weights"))


def entries() -> list[ZooEntry]:
    """Every shipped weights file whose file is present."""
    index = _weights_dir() / "index.json"
    if not index.is_file():
        return []
    raw = json.loads(index.read_text())
    out = []
    for item in raw.get("weights", []):
        entry = ZooEntry(
            name=item["name"],
            arch=item["arch"],
            quality=int(item["quality"]),
            file=item["file"],
            metric=item.get("metric", "mse"),
            lmbda=item.get("lambda"),
            default=bool(item.get("default", False)),
            info={k: v for k, v in item.items() if k not in ("name", "arch", "quality", "file", "metric", "lambda", "default")},
        )
        if entry.path.is_file():
            out.append(entry)
    return out


def default_entry() -> ZooEntry:
    found = entries()
    if not found:
        raise ModelError(NO_WEIGHTS)
    return next((e for e in found if e.default), found[0])


def resolve(model: str | None, quality: int | None, metric: str | None = None) -> Path:
    """The shipped weights file for ``model`` / ``quality`` / ``metric`` (None = default)."""
    return resolve_entry(model, quality, metric).path


def model_entries(model: str | None, metric: str | None = None) -> list[ZooEntry]:
    """The shipped entries of ``model`` (None = the default's arch), in zoo order.

    Raises a :class:`ModelError` naming what is shipped when there are none.
    """
    found = entries()
    if not found:
        raise ModelError(NO_WEIGHTS)
    base = model or default_entry().arch
    cands = [e for e in found if base in (e.arch, e.name)
             and (metric is None or e.metric == metric)]
    if not cands:
        have = ", ".join(sorted({e.arch for e in found}))
        raise ModelError(f"no shipped weights for {base!r}{' (' + metric + ')' if metric else ''}; shipped: {have}")
    return cands


def resolve_entry(model: str | None, quality: int | None, metric: str | None = None) -> ZooEntry:
    """The zoo entry for ``model`` / ``quality`` / ``metric`` (None = default).

    A variable-rate file has one entry per quality, all naming the same file.
    """
    if model is None and quality is None and metric is None:
        return default_entry()
    cands = model_entries(model, metric)
    base = model or cands[0].arch  # None: the default's arch, which model_entries used
    if quality is None:
        return next((e for e in cands if e.default), cands[len(cands) // 2])
    for e in cands:
        if e.quality == quality:
            return e
    qs = ", ".join(str(e.quality) for e in sorted(cands, key=lambda e: e.quality))
    raise ModelError(f"no shipped {base} weights at quality {quality}; available: {qs}")
