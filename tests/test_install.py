"""The core install is light: what ``pip install licodec`` pulls in (issue 16).

Reads the installed package metadata: the closure of licodec's requirements
without extras, through every installed distribution's own requirements, must
hold none of the heavy packages CompressAI used to bring.
"""

from __future__ import annotations

import re
from importlib import metadata

import pytest

HEAVY = {"compressai", "torchvision", "torch-geometric", "pandas", "matplotlib", "scipy"}
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _core_requirements(dist: str) -> list[str]:
    """Requirement names of ``dist`` that apply without extras on this platform."""
    from packaging.requirements import Requirement

    names = []
    for text in metadata.requires(dist) or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        names.append(_norm(req.name))
    return names


def _closure(root: str) -> set[str]:
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            todo += _core_requirements(name)
        except metadata.PackageNotFoundError:
            continue  # not installed here: its own requirements are unknown
    return seen - {root}


def test_core_install_pulls_in_no_heavy_package() -> None:
    pytest.importorskip("packaging")
    try:
        metadata.distribution("licodec")
    except metadata.PackageNotFoundError:
        pytest.skip("licodec is not installed (running from a source tree)")
    direct = set(_core_requirements("licodec"))
    assert {"torch", "numpy", "safetensors", "pillow", "pyyaml", "tqdm", "constriction"} <= direct
    closure = _closure("licodec")
    assert not closure & HEAVY, sorted(closure & HEAVY)
    # and CompressAI is still there for those who ask for it
    from packaging.requirements import Requirement

    reqs = [Requirement(r) for r in metadata.requires("licodec") or []]
    assert any(
        r.name == "compressai"
        and str(r.specifier) == "==1.2.8"
        and r.marker is not None
        and r.marker.evaluate({"extra": "compressai"})
        for r in reqs
    ), reqs


def test_numpy_is_not_pinned_below_2() -> None:
    try:
        reqs = metadata.requires("licodec") or []
    except metadata.PackageNotFoundError:
        pytest.skip("licodec is not installed (running from a source tree)")
    numpy = [r for r in reqs if _NAME.match(r) and _norm(_NAME.match(r).group(1)) == "numpy"]
    assert numpy and all("<2" not in r for r in numpy), numpy
