"""Rate-distortion results in CompressAI's JSON format.

A results file is ``{"name", "description", "results": {"bpp": [...],
"psnr-rgb": [...], "ms-ssim-rgb": [...], ...}}`` with one entry per operating
point; extra top-level keys (``meta``, ``per_image``) are allowed and ignored
by CompressAI's plotting. Published files disagree on MS-SSIM units:
CompressAI's ``ms-ssim-rgb`` is linear (0..1), the STF/WACNN files store dB
(-10*log10(1 - MS-SSIM)) under ``ms-ssim-db``, other paper files under
``ms-ssim-db-rgb``. :class:`RDCurve` reads all of them and always hands out
linear ``ms-ssim-rgb`` and dB ``ms-ssim-db-rgb`` where either is known.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from licodec.codec.files import atomic_output
from licodec.errors import FormatError, InputError

__all__ = [
    "METRIC_KEYS",
    "RDCurve",
    "load_curve",
    "load_results",
    "mean_results",
    "metric_key",
    "normalize_results",
    "save_results",
    "write_json_atomic",
]

# User-facing metric names -> the canonical key in ``results``.
METRIC_KEYS = {
    "psnr": "psnr-rgb",
    "psnr-rgb": "psnr-rgb",
    "ms-ssim": "ms-ssim-db-rgb",  # BD and plots use the dB scale
    "ms-ssim-db": "ms-ssim-db-rgb",
    "ms-ssim-db-rgb": "ms-ssim-db-rgb",
    "ms-ssim-rgb": "ms-ssim-rgb",
}

_PSNR_ALIASES = ("psnr-rgb", "psnr")
_MS_LINEAR_ALIASES = ("ms-ssim-rgb", "ms-ssim")
_MS_DB_ALIASES = ("ms-ssim-db-rgb", "ms-ssim-db", "ms-ssim-rgb-db")


def metric_key(metric: str) -> str:
    """Canonical results key for a metric name such as ``psnr`` or ``ms-ssim``."""
    try:
        return METRIC_KEYS[metric.lower()]
    except KeyError:
        raise ValueError(
            f"unknown metric {metric!r} (choose from {', '.join(sorted(METRIC_KEYS))})"
        ) from None


def _floats(values: Any, key: str, where: str) -> list[float]:
    if not isinstance(values, (list, tuple)):
        raise FormatError(f"{where}: results[{key!r}] must be a list of numbers")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            if v is None:
                out.append(math.nan)
                continue
            raise FormatError(f"{where}: results[{key!r}] holds a non-number ({v!r})")
        out.append(float(v))
    return out


def normalize_results(results: Mapping[str, Any], where: str = "results") -> dict[str, list[float]]:
    """Canonical keys and units for a ``results`` mapping.

    Returns ``bpp`` plus whichever of ``psnr-rgb``, ``ms-ssim-rgb`` (linear) and
    ``ms-ssim-db-rgb`` (dB) can be derived; other numeric lists are kept as
    they are. A linear-named MS-SSIM list whose values exceed 1 is taken to be
    in dB, because a linear MS-SSIM cannot exceed 1.
    """
    if not isinstance(results, Mapping):
        raise FormatError(f"{where}: 'results' must be an object")
    if "bpp" not in results:
        raise FormatError(f"{where}: results has no 'bpp' list")
    out: dict[str, list[float]] = {"bpp": _floats(results["bpp"], "bpp", where)}
    n = len(out["bpp"])
    if n == 0:
        raise FormatError(f"{where}: results['bpp'] is empty")
    consumed = {"bpp"}

    def take(key: str) -> list[float]:
        values = _floats(results[key], key, where)
        if len(values) != n:
            raise FormatError(
                f"{where}: results[{key!r}] has {len(values)} values but 'bpp' has {n}"
            )
        consumed.add(key)
        return values

    for key in _PSNR_ALIASES:
        if key in results:
            out["psnr-rgb"] = take(key)
            break
    for key in _MS_DB_ALIASES:
        if key in results:
            out["ms-ssim-db-rgb"] = take(key)
            break
    for key in _MS_LINEAR_ALIASES:
        if key in results:
            values = take(key)
            finite = [v for v in values if math.isfinite(v)]
            if finite and max(finite) > 1.0:  # dB values under a linear name
                out.setdefault("ms-ssim-db-rgb", values)
            else:
                out["ms-ssim-rgb"] = values
            break
    if "ms-ssim-rgb" in out and "ms-ssim-db-rgb" not in out:
        out["ms-ssim-db-rgb"] = [_db(v) for v in out["ms-ssim-rgb"]]
    elif "ms-ssim-db-rgb" in out and "ms-ssim-rgb" not in out:
        out["ms-ssim-rgb"] = [1.0 - 10.0 ** (-v / 10.0) for v in out["ms-ssim-db-rgb"]]
    for key, values in results.items():
        if key in consumed or key in out:
            continue
        if isinstance(values, (list, tuple)) and len(values) == n:
            try:
                out[key] = _floats(values, key, where)
            except FormatError:
                continue  # non-numeric side data (labels): not a metric
    return out


def _db(v: float) -> float:
    if math.isnan(v):
        return math.nan
    return math.inf if v >= 1.0 else -10.0 * math.log10(1.0 - v)


@dataclass
class RDCurve:
    """One rate-distortion curve: a name, a description and per-point metrics."""

    name: str
    results: dict[str, list[float]]
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    per_image: dict[str, Any] | None = None
    path: str | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = "results") -> RDCurve:
        if not isinstance(data, Mapping):
            raise FormatError(f"{where}: not a results object (expected a JSON object)")
        if "results" not in data:
            raise FormatError(f"{where}: no 'results' key (not a CompressAI-format results file)")
        name = data.get("name") or Path(where).stem
        per_image = data.get("per_image")
        return cls(
            name=str(name),
            description=str(data.get("description", "")),
            results=normalize_results(data["results"], where),
            meta=dict(data.get("meta") or {}),
            per_image=dict(per_image) if isinstance(per_image, Mapping) else None,
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
        }
        if self.meta:
            data["meta"] = self.meta
        data["results"] = self.results
        if self.per_image is not None:
            data["per_image"] = self.per_image
        return data

    def has(self, metric: str) -> bool:
        key = metric_key(metric)
        return key in self.results and any(math.isfinite(v) for v in self.results[key])

    def points(self, metric: str = "psnr") -> tuple[np.ndarray, np.ndarray]:
        """(bpp, quality) arrays sorted by bpp, dropping points without a finite value.

        ``metric`` is ``psnr`` (dB), ``ms-ssim`` (dB) or ``ms-ssim-rgb`` (linear).
        """
        key = metric_key(metric)
        if key not in self.results:
            raise KeyError(f"curve {self.name!r} has no {key} values")
        rate = np.asarray(self.results["bpp"], dtype=np.float64)
        dist = np.asarray(self.results[key], dtype=np.float64)
        ok = np.isfinite(rate) & np.isfinite(dist) & (rate > 0)
        order = np.argsort(rate[ok], kind="stable")
        return rate[ok][order], dist[ok][order]


def mean_results(records: Sequence[Mapping[str, Sequence[float | None]]]) -> dict[str, list[float]]:
    """Average per-image results (each a ``results``-like mapping) point by point.

    PSNR, bpp and times are arithmetic means over images (CompressAI's
    convention); the dB MS-SSIM is recomputed from the mean linear MS-SSIM so
    that it matches how published linear curves convert. A metric missing
    (None) for any image is left out of the mean.
    """
    if not records:
        raise ValueError("no per-image results to average")
    n = len(records[0]["bpp"])
    keys: list[str] = []
    for rec in records:
        if len(rec["bpp"]) != n:
            raise ValueError("per-image results have different numbers of points")
        for key in rec:
            if key not in keys:
                keys.append(key)
    out: dict[str, list[float]] = {}
    for key in keys:
        if key == "ms-ssim-db-rgb":
            continue
        columns = [rec.get(key) for rec in records]
        if any(col is None or len(col) != n for col in columns):
            continue
        if any(v is None for col in columns for v in col):  # type: ignore[union-attr]
            continue
        arr = np.asarray(columns, dtype=np.float64)
        out[key] = [float(v) for v in arr.mean(axis=0)]
    if "ms-ssim-rgb" in out:
        out["ms-ssim-db-rgb"] = [_db(v) for v in out["ms-ssim-rgb"]]
    return out


def load_results(path: str | Path) -> RDCurve:
    """Read a CompressAI-format results file (missing: InputError; malformed: FormatError)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory, not a results file") from None
    except UnicodeDecodeError:
        raise FormatError(f"{p}: not a JSON results file (not UTF-8 text)") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{p}: malformed JSON ({exc.msg} at line {exc.lineno})") from None
    curve = RDCurve.from_dict(data, str(p))
    curve.path = str(p)
    return curve


def write_json_atomic(data: Any, path: str | Path) -> None:
    """Write JSON atomically, so readers never see half a file."""
    with atomic_output(path, mkdir=True) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def save_results(curve: RDCurve, path: str | Path) -> None:
    """Write ``curve`` as a CompressAI-format JSON file (atomically)."""
    write_json_atomic(curve.to_dict(), path)


def load_curve(spec: str, dataset: str = "kodak") -> RDCurve:
    """A results file path, or else the name of a bundled published curve (``vtm``, ``stf``...)."""
    p = Path(spec)
    if p.is_file():
        return load_results(p)
    from licodec.eval.reference import is_published, list_published, load_published

    if is_published(spec, dataset):
        curve: RDCurve = load_published(spec, dataset)
        return curve
    if p.suffix.lower() == ".json" or p.parent != Path("."):
        raise InputError(f"{spec}: no such file")
    raise InputError(
        f"{spec}: neither a results file nor a published curve "
        f"({', '.join(list_published(dataset))})"
    )
