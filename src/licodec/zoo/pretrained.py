"""Pretrained weights shipped inside the package.

``zoo/weights/index.json`` lists every shipped file with what a user needs to
judge it: architecture, quality index, lambda, metric, training data and
steps, digest, and the Kodak rate/PSNR measured with ``licodec eval``. One
entry is the default that ``licodec compress`` uses without flags.

Released weights are frozen: a retrained model ships as a new *version* of its
architecture (a new file, a new digest). Encoding picks an architecture's
newest version (or ``ARCH-vN`` for an older one); decoding picks the weights by
the digest the file names, so every file written with shipped weights keeps
decoding. Versions no longer in the package are listed under ``retired`` with
where their file is kept, so the error for such a file says exactly what to
pass as ``--weights``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from licodec.errors import ModelError

__all__ = [
    "NO_WEIGHTS",
    "RetiredWeights",
    "ZooEntry",
    "default_entry",
    "entries",
    "entry_for_digest",
    "find_digest",
    "resolve",
    "resolve_entry",
    "retired",
]

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
    version: int = 1
    digest: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return _weights_dir() / self.file

    @property
    def tag(self) -> str:
        """``ARCH-vN``: names this release of the architecture's weights."""
        return f"{self.arch}-v{self.version}"


@dataclass(frozen=True)
class RetiredWeights:
    """A released weights version that the package no longer carries, and where it is kept."""

    arch: str
    version: int
    digest: str
    steps: int
    file: str
    commit: str

    def hint(self) -> str:
        out = f"{self.arch}-v{self.version}.safetensors"
        return (
            f"{self.arch} v{self.version} ({self.steps:,} training steps), which this "
            f"licodec no longer ships; get it from a licodec git clone with `git show "
            f"{self.commit}:src/licodec/zoo/weights/{self.file} > {out}` and pass "
            f"--weights {out}"
        )


def _weights_dir() -> Path:
    return Path(str(resources.files("licodec.zoo") / "weights"))


def _index() -> dict[str, Any]:
    index = _weights_dir() / "index.json"
    return json.loads(index.read_text()) if index.is_file() else {}


_OWN_KEYS = ("name", "arch", "quality", "file", "metric", "lambda", "default", "version", "digest")


def entries() -> list[ZooEntry]:
    """Every shipped weights file whose file is present (every version)."""
    out = []
    for item in _index().get("weights", []):
        entry = ZooEntry(
            name=item["name"],
            arch=item["arch"],
            quality=int(item["quality"]),
            file=item["file"],
            metric=item.get("metric", "mse"),
            lmbda=item.get("lambda"),
            default=bool(item.get("default", False)),
            version=int(item.get("version", 1)),
            digest=str(item.get("digest", "")),
            info={k: v for k, v in item.items() if k not in _OWN_KEYS},
        )
        if entry.path.is_file():
            out.append(entry)
    return out


def retired() -> list[RetiredWeights]:
    """Released versions that are no longer in the package."""
    return [
        RetiredWeights(
            str(r["arch"]),
            int(r["version"]),
            str(r["digest"]),
            int(r["steps"]),
            str(r["file"]),
            str(r["commit"]),
        )
        for r in _index().get("retired", [])
    ]


def _digest_of(entry: ZooEntry) -> str:
    if entry.digest:
        return entry.digest
    from licodec.zoo.weights import read_config  # an index without digests: ask the file

    return str(read_config(entry.path).get("digest", ""))


def find_digest(arch: str, digest: str, quality: int = 0) -> ZooEntry | RetiredWeights | None:
    """The released weights of ``arch`` with ``digest``: shipped, retired, or None."""
    found = [e for e in entries() if e.arch == arch and _digest_of(e) == digest]
    if found:
        return next((e for e in found if e.quality == quality), found[0])
    return next((r for r in retired() if r.arch == arch and r.digest == digest), None)


def entry_for_digest(arch: str, digest: str, quality: int = 0) -> ZooEntry:
    """The shipped entry whose weights have ``digest`` (what a file names), any version.

    Raises a :class:`ModelError` that says where the weights are when they are
    a retired version, and what to do when they were never shipped.
    """
    found = find_digest(arch, digest, quality)
    if isinstance(found, ZooEntry):
        return found
    if found is not None:
        raise ModelError(f"the file was encoded with {found.hint()}")
    if not entries():
        raise ModelError(NO_WEIGHTS)
    raise ModelError(
        f"the file was encoded with {arch} weights {digest}, which licodec does not ship "
        "(weights you trained or imported): pass them with --weights FILE"
    )


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

    An architecture name means its newest version; ``ARCH-vN`` (an entry's
    :attr:`~ZooEntry.tag`) an older one. Raises a :class:`ModelError` naming what is
    shipped when there are none.
    """
    found = entries()
    if not found:
        raise ModelError(NO_WEIGHTS)
    base = model or default_entry().tag
    cands = [
        e
        for e in found
        if base in (e.arch, e.name, e.tag) and (metric is None or e.metric == metric)
    ]
    if cands and any(e.arch == base for e in cands):
        newest = max(e.version for e in cands)
        cands = [e for e in cands if e.version == newest]
    if not cands:
        have = ", ".join(sorted({e.arch for e in found}))
        raise ModelError(
            f"no shipped weights for {base!r}{' (' + metric + ')' if metric else ''}; shipped: "
            f"{have}; for another architecture, convert the authors' checkpoint with "
            "`licodec import-checkpoint` (or train one) and pass --weights FILE"
        )
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
