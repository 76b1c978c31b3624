"""Rate-distortion evaluation of a learned model on real files.

Every image is compressed with :class:`licodec.codec.api.Codec` to the bytes
of a ``.lic`` file (container included), those bytes are decoded again, and
the decoded pixels are scored with :mod:`licodec.eval.metrics` exactly like
the classical baselines: bpp from the file length, PSNR on 8-bit RGB,
MS-SSIM via pytorch-msssim. ``estimate=True`` instead takes the rate from the
model's likelihoods (one forward pass per tile, no bitstream, no container)
and the distortion from the forward pass's reconstruction, which is how many
papers report numbers; the output says which was done.

One operating point is one weights file (a quality of the zoo resolves to
one), or one rate of a variable-rate file. :func:`run_eval` writes a
CompressAI-format JSON after every finished image, so an interrupted run
resumes where it stopped, a later run can add operating points to the file,
and it can spread the images over worker processes that each load every
model once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from licodec.errors import InputError, ModelError, OutputError

__all__ = [
    "OperatingPoint",
    "default_points",
    "evaluate_image",
    "resolve_points",
    "run_eval",
]

#: Per-image keys that are not averaged into ``results``.
_NOT_AVERAGED = ("size", "bytes")

_REAL_NOTE = (
    "bpp from the real .lic file length (container included) over the pixel count; PSNR and "
    "MS-SSIM of the decoded file on 8-bit RGB; encoding_time includes the encoder's check "
    "decode (the format stores a checksum of the reconstruction)"
)
_ESTIMATE_NOTE = (
    "ESTIMATED: bpp = sum of -log2 likelihoods of y and z from the model's forward pass "
    "(no bitstream, no container) over the pixel count; PSNR and MS-SSIM of the forward "
    "pass's reconstruction rounded to 8-bit RGB"
)


@dataclass(frozen=True)
class OperatingPoint:
    """One weights file of the curve and what its config says about it."""

    weights: str
    arch: str
    digest: str
    quality: int | None = None
    lmbda: float | None = None
    metric: str | None = None

    variable_rate: bool = False

    @property
    def key(self) -> str:
        """Identifies the operating point: the weights, and the rate of a variable-rate file."""
        return self.digest + (f"@q{self.quality}" if self.variable_rate else "")

    @property
    def label(self) -> str:
        if self.quality is not None:
            return f"{self.arch} q{self.quality}"
        return f"{self.arch} {Path(self.weights).stem}"

    def to_meta(self) -> dict[str, Any]:
        d = asdict(self)
        d["lambda"] = d.pop("lmbda")
        return d

    @classmethod
    def from_meta(cls, d: Any) -> OperatingPoint:
        """The point a results file's ``meta["points"]`` entry describes (else ValueError)."""
        if not isinstance(d, dict) or not all(
            isinstance(d.get(k), str) for k in ("weights", "arch", "digest")
        ):
            raise ValueError(f"not an operating point: {d!r}")
        quality, lmbda, metric = d.get("quality"), d.get("lambda"), d.get("metric")
        return cls(
            weights=d["weights"],
            arch=d["arch"],
            digest=d["digest"],
            quality=quality if isinstance(quality, int) and not isinstance(quality, bool) else None,
            lmbda=float(lmbda)
            if isinstance(lmbda, (int, float)) and not isinstance(lmbda, bool)
            else None,
            metric=metric if isinstance(metric, str) else None,
            variable_rate=bool(d.get("variable_rate", False)),
        )

    def conflicts_with(self, other: OperatingPoint) -> bool:
        """Whether the two cannot lie on one curve: the same operating point from other
        weights (another variable-rate file, or a fixed-rate file at the same quality or λ)."""
        if self.key == other.key:
            return False
        if self.arch != other.arch or self.variable_rate != other.variable_rate:
            return True
        if self.variable_rate:
            return self.digest != other.digest
        return (self.quality is not None and self.quality == other.quality) or (
            self.lmbda is not None and self.lmbda == other.lmbda
        )


def is_variable_rate(path: str | os.PathLike[str]) -> bool:
    """Whether the weights file at ``path`` holds a variable-rate model."""
    from licodec.zoo.weights import rates_of, read_config

    return Path(path).is_file() and bool(rates_of(read_config(path)))


def _point_from_file(
    path: str | os.PathLike[str], model: str | None, rate_quality: int | None = None
) -> OperatingPoint:
    """The point of a weights file; ``quality`` picks one rate of a variable-rate file."""
    from licodec.zoo.weights import rates_of, read_config

    p = Path(path)
    if not p.is_file():
        raise ModelError(f"weights file not found: {p}")
    config = read_config(p)
    arch = str(config["arch"])
    if model is not None and arch != model:
        raise ModelError(f"--model {model} does not match {p}, which holds {arch}")
    digest = config.get("digest")
    if not isinstance(digest, str):  # older files: compute it from the tensors
        from licodec.zoo.weights import load_weights, weights_digest

        digest = weights_digest(load_weights(p)[0]).hex()
    quality = config.get("quality")
    lmbda = config.get("lambda")
    metric = config.get("metric")
    rates = rates_of(config)
    if rates:
        quality = rate_quality
        if quality is None or not 1 <= int(quality) <= len(rates):
            raise InputError(f"{p} is variable-rate: give qualities in 1..{len(rates)}")
        lambdas = config.get("lambdas") or []
        lmbda = lambdas[int(quality) - 1] if len(lambdas) == len(rates) else None
    return OperatingPoint(
        weights=str(p.resolve()),
        arch=arch,
        digest=digest,
        quality=int(quality)
        if isinstance(quality, int) and not isinstance(quality, bool)
        else None,
        lmbda=float(lmbda)
        if isinstance(lmbda, (int, float)) and not isinstance(lmbda, bool)
        else None,
        metric=str(metric) if metric else None,
        variable_rate=bool(rates),
    )


def _is_release_tag(name: str) -> bool:
    """Whether ``name`` names shipped weights by release (``wacnn-lite-v4``) or entry."""
    from licodec.zoo.pretrained import entries

    return any(name in (e.tag, e.name) for e in entries())


def resolve_points(
    model: str | None,
    qualities: Sequence[int] | None = None,
    weights: Sequence[str | os.PathLike[str]] | None = None,
) -> list[OperatingPoint]:
    """The operating points to evaluate, in the order given.

    ``weights`` files win; otherwise each of ``qualities`` (or, without them,
    every shipped quality) is looked up in the zoo for ``model`` (None: the
    shipped default model, the one ``licodec compress`` uses). A model name
    must be known; a weights file must hold that model.
    """
    if model is not None:
        from licodec.models import list_models  # imports torch: only for a named model

        known = list_models()
        if model not in known and (weights or not _is_release_tag(model)):
            raise ModelError(f"unknown model {model!r}; known models: {', '.join(known)}")
    if weights:
        from licodec.zoo.weights import rates_of, read_config

        points = []
        for w in weights:
            rates = rates_of(read_config(w)) if Path(w).is_file() else []
            if rates:  # a variable-rate file: the given qualities, or all of them
                points += [_point_from_file(w, model, int(q)) for q in qualities or rates]
            elif qualities:
                raise InputError(
                    f"--qualities only applies to variable-rate weights; {w} is fixed-rate"
                )
            else:
                points.append(_point_from_file(w, model))
    else:
        for q in qualities or ():
            if not 0 <= int(q) <= 63:
                raise InputError(f"quality must be in 0..63, got {q}")
        from licodec.zoo.pretrained import model_entries, resolve_entry

        if qualities:
            found = [resolve_entry(model, int(q)) for q in qualities]
        else:  # every shipped quality of the model
            found = sorted(model_entries(model), key=lambda e: e.quality)
        points = [_point_from_file(e.path, e.arch, e.quality) for e in found]
    arches = {p.arch for p in points}
    if len(arches) > 1:
        raise ModelError(f"weights files hold different models ({', '.join(sorted(arches))})")
    seen: dict[str, str] = {}
    for p in points:
        if p.key in seen:
            raise InputError(f"{p.weights} holds the same weights as {seen[p.key]}")
        seen[p.key] = p.weights
    return points


def default_points(model: str | None) -> list[OperatingPoint]:
    """The one point ``licodec compress`` would code at: the zoo's default quality of
    ``model`` (None: the shipped default model)."""
    from licodec.zoo.pretrained import resolve_entry

    if model is not None and not _is_release_tag(model):
        from licodec.models import list_models

        if model not in list_models():
            resolve_points(model)  # raises the unknown-model error
    return resolve_points(model, [resolve_entry(model, None).quality])


# --------------------------------------------------------------------------- one image


def point_codec(
    point: OperatingPoint, tile_size: int, cache: dict[str, Any], device: str = "cpu"
) -> Any:
    """A loaded :class:`~licodec.codec.api.Codec` for ``point``, kept in ``cache``.

    The rates of one variable-rate file share one loaded model; ``device`` is
    where it runs (see :mod:`licodec.codec.device`).
    """
    from licodec.codec.api import Codec

    codec = cache.get(point.key)
    if codec is None:
        q = point.quality if point.variable_rate else None
        loaded = next(
            (c.load() for c in cache.values() if c.load().digest.hex() == point.digest), None
        )
        if loaded is not None:
            codec = Codec(
                loaded.module, q, metric=loaded.metric, tile_size=tile_size, device=device
            )
        else:
            codec = Codec(weights=point.weights, quality=q, tile_size=tile_size, device=device)
        if codec.load().digest.hex() != point.digest:
            raise ModelError(f"{point.weights} changed while evaluating (digest differs)")
        cache[point.key] = codec
    return codec


class _Evaluator:
    """Scores images at every operating point; loads each model once (per process)."""

    def __init__(
        self,
        points: Sequence[OperatingPoint],
        estimate: bool,
        tile_size: int,
        device: str = "cpu",
    ) -> None:
        self.points = list(points)
        self.estimate = estimate
        self.tile_size = tile_size
        self.device = device
        self._codecs: dict[str, Any] = {}

    def codec(self, point: OperatingPoint) -> Any:
        return point_codec(point, self.tile_size, self._codecs, self.device)

    def image(
        self, path: str | Path, points: Sequence[OperatingPoint] | None = None
    ) -> dict[str, Any]:
        """The record of ``path`` at ``points`` (default: all of this evaluator's)."""
        from licodec.codec.image_io import read_rgb

        rgb = read_rgb(path)
        record: dict[str, Any] = {"size": [int(rgb.shape[1]), int(rgb.shape[0])]}
        for point in self.points if points is None else points:
            if self.estimate:
                values = self._estimate(point, rgb)
            else:
                values = self._real(point, rgb, Path(path).name)
            for key, v in values.items():
                record.setdefault(key, []).append(v)
        return record

    def _real(self, point: OperatingPoint, rgb: Any, name: str) -> dict[str, Any]:
        from licodec.eval.metrics import image_metrics, to_uint8_rgb

        codec = self.codec(point)
        t0 = time.perf_counter()
        result = codec.encode(rgb, keep_alpha=False, name=name)
        t1 = time.perf_counter()
        decoded = codec.decode(result.data)
        t2 = time.perf_counter()
        pixels = to_uint8_rgb(decoded)
        if pixels.shape != rgb.shape:
            raise ModelError(
                f"{name}: decoded to {pixels.shape[1]}x{pixels.shape[0]}, "
                f"expected {rgb.shape[1]}x{rgb.shape[0]}"
            )
        values: dict[str, Any] = dict(image_metrics(rgb, pixels, len(result.data)))
        values["bytes"] = len(result.data)
        values["encoding_time"] = t1 - t0
        values["decoding_time"] = t2 - t1
        return values

    def _estimate(self, point: OperatingPoint, rgb: Any) -> dict[str, Any]:
        from licodec.eval.bitmap import likelihood_map
        from licodec.eval.metrics import image_metrics

        lm = self.codec(point).load()
        bm = likelihood_map(lm.module, rgb, self.tile_size, lm.rate_kwargs().get("rate"))
        values: dict[str, Any] = dict(image_metrics(rgb, bm.reconstruction, 0))
        values["bpp"] = bm.bpp
        values["bpp-y"] = bm.y_bpp
        values["bpp-z"] = bm.z_bpp
        values["forward_time"] = bm.seconds
        return values


def evaluate_image(
    path: str | Path,
    points: Sequence[OperatingPoint],
    estimate: bool = False,
    tile_size: int | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Per-image record for ``path`` at every point: lists aligned with ``points``.

    Keys: ``size`` [W, H], ``bpp``, ``psnr-rgb``, ``ms-ssim-rgb``,
    ``ms-ssim-db-rgb`` (None below 161 px), and ``bytes``, ``encoding_time``,
    ``decoding_time`` (real files) or ``bpp-y``, ``bpp-z``, ``forward_time``
    (``estimate``).
    """
    from licodec.codec.tiling import DEFAULT_TILE_SIZE

    return _Evaluator(points, estimate, tile_size or DEFAULT_TILE_SIZE, device).image(path)


# Worker processes keep their evaluator (and so their loaded models) here.
_WORKER: _Evaluator | None = None


def _worker_init(
    points: list[OperatingPoint], estimate: bool, tile_size: int, threads: int, device: str
) -> None:
    import torch

    torch.set_num_threads(threads)
    global _WORKER
    _WORKER = _Evaluator(points, estimate, tile_size, device)


def _worker_task(path: str, keys: list[str]) -> dict[str, Any]:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.image(path, [p for p in _WORKER.points if p.key in keys])


# --------------------------------------------------------------------------- output


# An image's state while a run is under way: its size and its values at each point done.
#   {"size": [W, H], "points": {point key: {metric: value}}}
# Results files hold the images done at every point in ``per_image`` (lists aligned with
# ``meta["points"]``) and, while operating points are being added to a file, the others
# in ``pending`` (this form), so that an interrupted run loses nothing.


def _by_point(record: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """A per-image record (lists aligned with ``keys``) as an image state."""
    points: dict[str, dict[str, Any]] = {k: {} for k in keys}
    for metric, values in record.items():
        if metric != "size":
            for k, v in zip(keys, values):
                points[k][metric] = v
    return {"size": record.get("size"), "points": points}


def _aligned(state: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """An image state as a per-image record with lists aligned with ``keys``."""
    record: dict[str, Any] = {"size": state["size"]}
    metrics: list[str] = []
    for k in keys:
        metrics += [m for m in state["points"][k] if m not in metrics]
    for m in metrics:
        record[m] = [state["points"][k].get(m) for k in keys]
    return record


def _merge_points(
    old: list[OperatingPoint], new: list[OperatingPoint], path: Path, hint: str
) -> list[OperatingPoint]:
    """The points of an existing file with the requested ones added.

    A requested point the file already has replaces its entry (same weights, and
    the file path given now); a point from other weights at an operating point
    the file already covers is refused.
    """
    by_key = {p.key: p for p in new}
    for n in new:
        clash = next((o for o in old if n.conflicts_with(o)), None)
        if clash is not None:
            raise OutputError(
                f"{path} was made with other weights ({clash.label} from {clash.weights}, "
                f"not {n.weights}); {hint}"
            )
    old_keys = {p.key for p in old}
    added = [p for p in new if p.key not in old_keys]
    merged = [by_key.get(p.key, p) for p in old] + added
    if added and all(p.quality is not None for p in merged):
        merged.sort(key=lambda p: int(p.quality or 0))
    return merged


def _check_existing(
    path: Path,
    points: list[OperatingPoint],
    estimate: bool,
    tile_size: int,
    images: list[Path],
) -> tuple[list[OperatingPoint], dict[str, Any]]:
    """The points and image states of a previous run that this run may continue or extend."""
    import json

    from licodec.eval.results import load_results

    old = load_results(path)
    meta = old.meta
    hint = "choose another output or pass --overwrite"
    if meta.get("tool") != "licodec eval" or old.per_image is None:
        raise OutputError(f"{path} exists and is not a licodec eval output; {hint}")
    if meta.get("mode") != ("estimate" if estimate else "real"):
        raise OutputError(f"{path} was made in {meta.get('mode')} mode; {hint}")
    if meta.get("tile_size") != tile_size:
        raise OutputError(f"{path} was made with tile size {meta.get('tile_size')}; {hint}")
    damaged = f"{path}: its list of weights is damaged; pass --overwrite"
    try:
        old_points = [OperatingPoint.from_meta(d) for d in meta.get("points", [])]
    except ValueError:
        raise OutputError(damaged) from None
    if not old_points:
        raise OutputError(damaged)
    merged = _merge_points(old_points, points, path, hint)
    keys = [p.key for p in old_points]
    raw = json.loads(path.read_text(encoding="utf-8"))
    pending = raw.get("pending") if isinstance(raw, dict) else None
    pending = pending if isinstance(pending, dict) else {}
    names = {p.name for p in images}
    stray = sorted((set(old.per_image) | set(pending)) - names)
    if stray:
        raise OutputError(
            f"{path} holds results for images not in the input ({stray[0]}, ...); {hint}"
        )
    states: dict[str, Any] = {}
    for name, rec in old.per_image.items():
        if not isinstance(rec, dict) or not all(
            isinstance(rec.get(k), list) and len(rec[k]) == len(keys) for k in ("bpp", "psnr-rgb")
        ):
            raise OutputError(f"{path}: the entry for {name} is damaged; pass --overwrite")
        states[name] = _by_point(rec, keys)
    for name, state in pending.items():
        if name in states or not (
            isinstance(state, dict)
            and isinstance(state.get("points"), dict)
            and set(state["points"]) <= set(keys)
            and all(isinstance(v, dict) and "bpp" in v for v in state["points"].values())
        ):
            raise OutputError(f"{path}: the pending entry for {name} is damaged; pass --overwrite")
        states[name] = {"size": state.get("size"), "points": dict(state["points"])}
    return merged, states


def _build_output(
    points: list[OperatingPoint],
    states: dict[str, Any],
    images: list[Path],
    estimate: bool,
    tile_size: int,
    name: str | None,
    dataset: str | None,
    workers: int,
    threads: int | None,
    device: str = "cpu",
) -> dict[str, Any] | None:
    from licodec import __version__
    from licodec.eval.baselines import is_monotone
    from licodec.eval.results import mean_results

    keys = [p.key for p in points]
    done = [
        p.name
        for p in images
        if p.name in states and all(k in states[p.name]["points"] for k in keys)
    ]
    if not done:
        return None
    per_image = {n: _aligned(states[n], keys) for n in done}
    pending = {
        p.name: states[p.name] for p in images if p.name in states and p.name not in per_image
    }
    arch = points[0].arch
    import torch

    meta: dict[str, Any] = {
        "tool": "licodec eval",
        "model": arch,
        "mode": "estimate" if estimate else "real",
        "bpp_source": "likelihoods" if estimate else "file",
        "note": _ESTIMATE_NOTE if estimate else _REAL_NOTE,
        "points": [p.to_meta() for p in points],
        "tile_size": tile_size,
        "images": done,
        "num_images": len(done),
        "complete": len(done) == len(images),
        "workers": workers,
        "threads_per_worker": threads if threads else torch.get_num_threads(),
        "device": device,  # of the latest run: the coding times depend on it
        "licodec": __version__,
        "torch": torch.__version__,
    }
    if dataset:
        meta["dataset"] = dataset
    records = [{k: v for k, v in per_image[n].items() if k not in _NOT_AVERAGED} for n in done]
    results: dict[str, Any] = {}
    if all(p.quality is not None for p in points):
        results["quality"] = [p.quality for p in points]
    if all(p.lmbda is not None for p in points):
        results["lambda"] = [p.lmbda for p in points]
    results.update(mean_results(records))
    order = sorted(range(len(points)), key=lambda i: results["bpp"][i])
    meta["monotone"] = is_monotone([results["psnr-rgb"][i] for i in order])
    label = name or f"licodec {arch}"
    if estimate:
        label += " (estimated rate)"
    data: dict[str, Any] = {
        "name": label,
        "description": (
            f"licodec {arch}, {len(points)} weights, {len(done)} images; "
            + (_ESTIMATE_NOTE if estimate else _REAL_NOTE)
        ),
        "meta": meta,
        "results": results,
        "per_image": per_image,
    }
    if pending:
        data["pending"] = pending
    return data


def run_eval(
    images: Sequence[str | Path],
    points: Sequence[OperatingPoint],
    output: str | Path,
    *,
    estimate: bool = False,
    workers: int = 1,
    threads: int | None = None,
    tile_size: int | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
    name: str | None = None,
    dataset: str | None = None,
    on_image: Callable[[str, dict[str, Any]], None] | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Evaluate every image at every point and write ``output`` (CompressAI format).

    An existing ``output`` made in the same mode and tile size is continued:
    images it holds at a point are not redone, and points it lacks are added
    (the file keeps its own; points from other weights at an operating point it
    already covers are refused). ``threads`` sets torch's threads per process
    (default: torch's own with one worker, 1 with several). ``on_image(name,
    record)`` is called after each newly scored image, with the points just
    scored. ``device`` is where the models run ("cpu", "cuda", "cuda:N", "mps",
    "auto"; checked before any image is coded). Returns the written data.
    """
    from tqdm.auto import tqdm

    from licodec.codec.tiling import DEFAULT_TILE_SIZE
    from licodec.eval.results import write_json_atomic
    from licodec.eval.sweep import run_sweep

    paths = [Path(p) for p in images]
    if not paths:
        raise InputError("no images to evaluate")
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        raise InputError("image file names must be unique")
    pts = list(points)
    if not pts:
        raise InputError("no weights to evaluate")
    if workers < 1:
        raise InputError("--workers must be at least 1")
    tile = int(tile_size or DEFAULT_TILE_SIZE)
    if device != "cpu":
        from licodec.codec.device import resolve_device

        device = str(resolve_device(device))  # fails here, and "auto" becomes what it picked
    out = Path(output)
    if out.is_dir():
        raise OutputError(f"{out}: is a directory")
    states: dict[str, Any] = {}
    if out.exists() and not overwrite:
        pts, states = _check_existing(out, pts, estimate, tile, paths)

    def missing(path: Path) -> list[OperatingPoint]:
        have = states.get(path.name, {}).get("points", {})
        return [p for p in pts if p.key not in have]

    todo = [p for p in paths if missing(p)]
    workers = min(workers, max(1, len(todo)))

    def write() -> dict[str, Any] | None:
        data = _build_output(
            pts, states, paths, estimate, tile, name, dataset, workers, threads, device
        )
        if data is not None:
            write_json_atomic(data, out)
        return data

    bar = tqdm(
        total=len(paths),
        initial=len(paths) - len(todo),
        unit="img",
        disable=(not progress) if progress is not None else None,
    )

    def finish(task: tuple[Path, list[str]], record: dict[str, Any]) -> None:
        path, keys = task
        state = states.setdefault(path.name, {"size": record["size"], "points": {}})
        state["points"].update(_by_point(record, keys)["points"])
        write()
        if on_image is not None:
            on_image(path.name, record)
        bar.set_postfix_str(path.name, refresh=False)
        bar.update(1)

    evaluator: _Evaluator | None = None

    def serial(task: tuple[Path, list[str]]) -> dict[str, Any]:
        nonlocal evaluator
        if evaluator is None:
            evaluator = _Evaluator(pts, estimate, tile, device)
        path, keys = task
        return evaluator.image(path, [q for q in pts if q.key in keys])

    tasks = [(p, [q.key for q in missing(p)]) for p in todo]
    import torch

    old_threads = torch.get_num_threads()
    if threads and workers == 1:
        torch.set_num_threads(threads)
    try:
        run_sweep(
            tasks,
            finish,
            serial=serial,
            remote=_worker_task,
            remote_args=lambda t: (str(t[0]), t[1]),
            workers=workers,
            initializer=_worker_init,
            initargs=(pts, estimate, tile, threads or 1, device),
        )
    finally:
        torch.set_num_threads(old_threads)
        bar.close()

    data = write()
    assert data is not None
    return data
