"""Training data: a folder tree of images, random crops, a resumable sample order.

Design, and why:
- The folder is scanned once at start (image headers only, in a thread pool) and the
  list of usable files is stored in the run directory, so a resumed run sees exactly
  the same list even if files were added since. Unreadable files and files smaller
  than the crop are skipped and counted, never a crash mid-epoch.
- The sample order is a pure function of (seed, position in an endless stream of
  epochs): :class:`StreamSampler` yields ``(position, index)`` and the crop offsets
  come from a generator seeded with ``(seed, position)``. Resuming at position P
  therefore reproduces the data exactly, with any number of loader workers, and
  DDP ranks take interleaved positions of one global stream.
- Small sets (BSDS500: 500 JPEGs, 230 MB decoded) are decoded once into RAM as
  uint8; a crop is then a slice, which keeps a 2-core CPU busy with the model,
  not with JPEG decoding. Batches stay uint8 until they reach the device.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from licodec.codec.image_io import image_extensions, read_rgb
from licodec.errors import InputError

__all__ = [
    "CropDataset",
    "ImageIndex",
    "StreamSampler",
    "scan_images",
]


@dataclass
class ImageIndex:
    """Usable images of a folder tree (paths relative to ``root``) and what was skipped."""

    root: str
    files: list[str]
    sizes: list[tuple[int, int]]  # (width, height)
    skipped_unreadable: int = 0
    skipped_small: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "files": self.files,
            "sizes": self.sizes,
            "skipped_unreadable": self.skipped_unreadable,
            "skipped_small": self.skipped_small,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageIndex:
        return cls(
            data["root"],
            list(data["files"]),
            [tuple(s) for s in data["sizes"]],
            int(data.get("skipped_unreadable", 0)),
            int(data.get("skipped_small", 0)),
        )

    def save(self, path: Path) -> None:
        from licodec.train.config import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_json()))

    @classmethod
    def load(cls, path: Path) -> ImageIndex:
        with open(path, encoding="utf-8") as fh:
            return cls.from_json(json.load(fh))

    def describe(self) -> str:
        text = f"{len(self.files)} images from {Path(self.root).name}/"
        skipped = []
        if self.skipped_unreadable:
            skipped.append(f"{self.skipped_unreadable} unreadable")
        if self.skipped_small:
            skipped.append(f"{self.skipped_small} too small")
        return text + (f" (skipped: {', '.join(skipped)})" if skipped else "")


def _header_size(path: str) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except Exception:  # noqa: BLE001 - any failure means "unreadable"
        return None


def scan_images(root: str | os.PathLike[str], min_size: int = 1, threads: int = 8) -> ImageIndex:
    """Find images below ``root`` (recursively, sorted) whose sides are >= ``min_size``."""
    extensions = image_extensions()  # registers the plugins _header_size needs
    base = Path(root)
    if not base.is_dir():
        raise InputError(f"data folder not found: {root}")
    candidates: list[str] = []
    for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in extensions:
                candidates.append(os.path.relpath(os.path.join(dirpath, name), base))
    candidates.sort()
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        sizes = list(pool.map(_header_size, [str(base / c) for c in candidates]))
    files, kept, unreadable, small = [], [], 0, 0
    for rel, size in zip(candidates, sizes):
        if size is None:
            unreadable += 1
        elif min(size) < min_size:
            small += 1
        else:
            files.append(rel)
            kept.append(size)
    return ImageIndex(str(base.resolve()), files, kept, unreadable, small)


def _mix(*words: int) -> int:
    """A 63-bit hash of integers (SplitMix64 steps), for per-position seeds."""
    x = 0x9E3779B97F4A7C15
    for w in words:
        x = (x ^ (int(w) & 0xFFFFFFFFFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF
        x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        x = z ^ (z >> 31)
    return x >> 1


class StreamSampler(Sampler):
    """An endless stream of epochs, each a seeded permutation; resumable at any position.

    Yields ``(position, index)``; global position ``p`` belongs to rank ``p % world``.
    """

    def __init__(self, n: int, seed: int, start: int = 0, rank: int = 0, world: int = 1) -> None:
        if n <= 0:
            raise ValueError("empty data set")
        self.n, self.seed, self.start, self.rank, self.world = n, seed, start, rank, world

    def _perm(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(_mix(self.seed, epoch, 0x5EED))
        return torch.randperm(self.n, generator=g)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        # first global position >= start that belongs to this rank
        pos = self.start + ((self.rank - self.start) % self.world)
        epoch, perm = -1, None
        while True:
            e = pos // self.n
            if e != epoch:
                epoch, perm = e, self._perm(e)
            yield pos, int(perm[pos % self.n])  # type: ignore[index]
            pos += self.world


class CropDataset(Dataset):
    """Random ``crop``×``crop`` uint8 CHW crops; the crop depends only on the stream position."""

    def __init__(
        self,
        index: ImageIndex,
        crop: int,
        seed: int = 0,
        hflip: bool = False,
        cache: bool = False,
    ) -> None:
        self.index, self.crop, self.seed, self.hflip = index, crop, seed, hflip
        self.paths = [os.path.join(index.root, f) for f in index.files]
        self.images: list[np.ndarray] | None = None
        self.failed = 0
        if cache:
            self.images = self._decode_all()

    def _decode_all(self) -> list[np.ndarray]:
        def load(path: str) -> np.ndarray | None:
            try:
                return read_rgb(path)
            except Exception:  # noqa: BLE001
                return None

        with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
            arrays = list(pool.map(load, self.paths))
        keep = [i for i, a in enumerate(arrays) if a is not None and min(a.shape[:2]) >= self.crop]
        if len(keep) < len(arrays):
            self.failed = len(arrays) - len(keep)
            warnings.warn(f"{self.failed} training images failed to decode; skipped", stacklevel=2)
            self.paths = [self.paths[i] for i in keep]
        if not keep:
            raise InputError("no training image could be decoded")
        return [arrays[i] for i in keep]  # type: ignore[misc]

    @staticmethod
    def estimate_bytes(index: ImageIndex) -> int:
        return sum(w * h * 3 for w, h in index.sizes)

    def __len__(self) -> int:
        return len(self.paths)

    def _image(self, i: int) -> np.ndarray | None:
        if self.images is not None:
            return self.images[i]
        try:
            arr = read_rgb(self.paths[i])
        except Exception:  # noqa: BLE001 - a broken file must not stop an epoch
            arr = None
        if arr is None or min(arr.shape[:2]) < self.crop:
            self.failed += 1
            warnings.warn(f"skipping unreadable training image {self.paths[i]}", stacklevel=2)
            return None
        return arr

    def __getitem__(self, key: tuple[int, int] | int) -> torch.Tensor:
        pos, i = key if isinstance(key, tuple) else (key, key)
        n = len(self.paths)
        for attempt in range(min(n, 64)):
            arr = self._image((i + attempt * 7919) % n)  # deterministic fallback
            if arr is not None:
                break
        else:
            raise InputError("64 training images in a row failed to decode")
        rng = np.random.default_rng(_mix(self.seed, pos, 0xC409))
        h, w = arr.shape[:2]
        top = int(rng.integers(0, h - self.crop + 1))
        left = int(rng.integers(0, w - self.crop + 1))
        patch = arr[top : top + self.crop, left : left + self.crop]
        if self.hflip and rng.random() < 0.5:
            patch = patch[:, ::-1]
        return torch.from_numpy(np.ascontiguousarray(patch.transpose(2, 0, 1)))


def load_val_images(root: str, limit: int = 0) -> tuple[list[str], list[np.ndarray]]:
    """The first ``limit`` (0: all) readable images of ``root``, sorted, as uint8 HWC."""
    index = scan_images(root, min_size=1)
    if not index.files:
        raise InputError(f"no readable images in validation folder {root}")
    files = index.files[:limit] if limit else index.files
    return files, [read_rgb(os.path.join(index.root, f)) for f in files]


def collate_uint8(batch: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.stack(list(batch), 0)
