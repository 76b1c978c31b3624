"""Published rate-distortion curves bundled with licodec.

``kodak_published.json`` holds the Kodak points of the classical codecs (VTM,
BPG, HM, AV1, JPEG, WebP, JPEG 2000, as measured by CompressAI) and of the
learned models this project implements (STF, WACNN, TCM S/M/L, as published
by their authors), each with the source it was copied from. It is generated
by ``tools/make_published_reference.py``.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from licodec.errors import InputError

__all__ = ["DATASETS", "DATASET_IMAGES", "is_published", "list_published", "load_published"]

DATASETS = ("kodak",)
#: How many images each data set's published numbers are averaged over.
DATASET_IMAGES = {"kodak": 24}


@cache
def _load(dataset: str) -> dict[str, Any]:
    if dataset not in DATASETS:
        raise InputError(
            f"no published curves for data set {dataset!r} (have: {', '.join(DATASETS)})"
        )
    text = (
        resources.files(__name__).joinpath(f"{dataset}_published.json").read_text(encoding="utf-8")
    )
    data: dict[str, Any] = json.loads(text)
    return data


def _resolve(name: str, dataset: str) -> str:
    curves = _load(dataset)["curves"]
    key = name.strip().lower()
    if key in curves:
        return key
    for cand, entry in curves.items():
        if key in (a.lower() for a in entry.get("aliases", [])):
            return cand
    raise InputError(f"unknown published curve {name!r} (choose from {', '.join(curves)})")


def list_published(dataset: str = "kodak") -> dict[str, str]:
    """Names of the bundled curves mapped to their display names."""
    return {k: v["name"] for k, v in _load(dataset)["curves"].items()}


def is_published(name: str, dataset: str = "kodak") -> bool:
    """True when ``name`` (or an alias) is a bundled curve."""
    try:
        _resolve(name, dataset)
    except InputError:
        return False
    return True


def load_published(name: str, dataset: str = "kodak") -> Any:
    """The bundled curve ``name`` (e.g. ``vtm``, ``bpg``, ``stf``, ``tcm-l``) as an RDCurve.

    Its ``meta`` carries ``source`` (where the numbers were copied from),
    ``reference`` (the paper or tool) and ``dataset``.
    """
    from licodec.eval.results import RDCurve

    key = _resolve(name, dataset)
    entry = _load(dataset)["curves"][key]
    curve = RDCurve.from_dict(
        {
            "name": entry["name"],
            "description": entry.get("description", ""),
            "results": entry["results"],
        },
        where=f"published:{key}",
    )
    curve.meta = {
        "published": key,
        "dataset": dataset,
        "num_images": DATASET_IMAGES[dataset],
        "source": entry["source"],
        "reference": entry.get("reference", ""),
    }
    return curve
