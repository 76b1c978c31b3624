"""The Python API: ``compress(image) -> bytes``, ``decompress(data) -> Image``, ``Codec``.

Encoding codes each tile with ``model.compress``, then decodes it again with
``model.decompress`` to learn exactly what a decoder will produce; the CRC32 of
those pixels goes into the file. A decoder whose numerics or weights differ
from the encoder's therefore fails with :class:`ModelError` instead of
returning a garbled image.

Model resolution (one place each, so the shipped-weights issue only fills in
:func:`find_pretrained`):

* ``weights=FILE`` -> :func:`licodec.zoo.weights.load_weights`;
* a model object -> used as is (it must carry ``arch`` and have had ``update()``);
* otherwise -> :func:`find_pretrained` (the zoo's default for a model name and
  quality), which raises :class:`ModelError` while no weights are installed.

``device=`` (:mod:`licodec.codec.device`) says where the networks run; it is
resolved when the first model loads. Weights are loaded on the CPU (their
digest and any coder tables built there, as on every machine) and then moved;
the entropy coder stays on the CPU, and the outputs (bytes, PIL images) do not
depend on the device's type.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import weakref
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from licodec.codec.container import (
    MAX_PIXELS,
    MAX_QUALITY,
    MAX_STREAMS,
    ColourMode,
    Container,
    TileRecord,
    latent_shape_bound,
    parse,
    serialise,
    tile_rects,
)
from licodec.codec.device import resolve_device
from licodec.codec.fileinfo import file_info
from licodec.codec.image_io import (
    ImageSource,
    decode_alpha,
    encode_alpha,
    is_standard_srgb,
    load_image,
    srgb_profile,
    to_pil,
)
from licodec.codec.limits import (
    DEFAULT_MAX_MEMORY,
    MAX_INPUT_BYTES,
    UNKNOWN_MEMORY_PER_PIXEL,
    ModelGeometry,
    check_decode,
    check_geometry,
    check_header,
)
from licodec.codec.quality import (
    EFFORT_MAX,
    MAX_BPP,
    QUALITY_MAX,
    code_of,
    effort_steps,
    nearest_point,
    point_code,
    point_of,
    quality_of,
    rate_position,
)
from licodec.codec.tiling import (
    DEFAULT_TILE_SIZE,
    check_tile_size,
    effective_tile_size,
    plan_tiles,
)
from licodec.entropy.contract import CodecModel, codec_model
from licodec.errors import FormatError, InputError, ModelError, TargetError
from licodec.zoo.pretrained import NO_WEIGHTS

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = [
    "NO_WEIGHTS_MESSAGE",
    "Codec",
    "EncodeResult",
    "LoadedModel",
    "compress",
    "decompress",
    "file_info",
    "find_pretrained",
]

logger = logging.getLogger("licodec")

NO_WEIGHTS_MESSAGE = NO_WEIGHTS

#: Called after each tile: ``progress(done, total)``.
Progress = Callable[[int, int], None]


# -- model resolution ------------------------------------------------------------


def find_pretrained(model: str | None, quality: int | None, metric: str | None = None) -> Path:
    """Path of the shipped weights for ``model`` at ``quality`` (``None`` = the defaults).

    The single hook for the model zoo: it delegates to
    ``licodec.zoo.pretrained.resolve(model, quality, metric) -> path`` when that
    module exists, which must raise :class:`ModelError` for unknown or missing
    weights; with no weights installed it raises :data:`NO_WEIGHTS_MESSAGE`.
    """
    from licodec.zoo.pretrained import resolve

    return Path(resolve(model, quality, metric))


def _known_models() -> list[str]:
    from licodec.models import list_models

    return list_models()


def _check_model_name(name: str) -> None:
    """``name`` is a registered id, or ``ID-vN`` (a shipped version of its weights)."""
    import re

    known = _known_models()
    if re.sub(r"-v[0-9]+$", "", name) not in known:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(known)}")


@dataclass
class LoadedModel:
    """A model ready to code, with what the container records about it."""

    module: CodecModel
    arch: str
    digest: bytes
    quality: int = 0
    metric: str | None = None
    source: Path | None = None  # the weights file it was loaded from
    #: λ of each trained point (one for a fixed-rate model; empty when unknown).
    lambdas: tuple[float, ...] = ()

    @property
    def pad_multiple(self) -> int:
        return int(self.module.pad_multiple)

    @property
    def num_rates(self) -> int:
        """Operating points of a variable-rate model (0 = fixed rate)."""
        return int(self.module.num_rates or 0)

    def rate_kwargs(
        self, quality: int | None = None, code: int | None = None
    ) -> dict[str, int | float]:
        """``rate=`` for the model's compress/decompress at trained point ``quality``
        (default: ours), or at ``code`` on the 0-100 scale (:mod:`licodec.codec.quality`)."""
        if not self.num_rates:
            if code is not None:
                raise ModelError(f"{self.arch} is fixed-rate: it has no rate between points")
            return {}
        if code is not None:
            return {"rate": rate_position(code, self.num_rates)}
        q = self.quality if quality is None else quality
        if not 1 <= q <= self.num_rates:
            raise ModelError(
                f"{self.arch} is variable-rate: quality must be 1..{self.num_rates}, got {q}"
            )
        return {"rate": q - 1}

    def code_of(self, q: float) -> int:
        """The stored code of quality ``q`` (0-100); a fixed-rate model has no scale."""
        if not self.num_rates:
            raise ModelError(
                f"{self.arch} weights are fixed-rate: they code at their one trained point"
                + (f" (quality index {self.quality})" if self.quality else "")
                + "; the 0-100 quality scale, --size and --bpp need a variable-rate model such "
                "as the shipped default (omit --quality to use these weights)"
            )
        return code_of(q)

    def lambda_at(self, code: int | None) -> float:
        """The λ the model was trained for at ``code`` (None: at its trained point)."""
        from licodec.entropy.refine import lambda_at

        n = self.num_rates
        if not self.lambdas or (n and len(self.lambdas) != n):
            raise ModelError(
                f"--effort needs the λ the {self.arch} weights were trained for, which the "
                "weights file does not record (import it with --lambda)"
            )
        if not n:
            return self.lambdas[0]
        rate = self.rate_kwargs(None, code)["rate"]
        return lambda_at(self.lambdas, float(rate))


def _digest(module: Any) -> bytes:
    from licodec.zoo.weights import weights_digest

    return weights_digest(module)


def _from_weights_file(
    path: str | os.PathLike[str],
    arch: str | None = None,
    device: str | torch.device | None = None,
) -> LoadedModel:
    """Load a weights file; ``arch`` (if given) must match its config, checked before loading.

    Loaded on the CPU, then moved to ``device`` (None: stays there), which is
    resolved after the cheap checks: a missing file is reported without torch.
    """
    from licodec.zoo.weights import load_weights, read_config

    if not Path(path).is_file():
        raise ModelError(f"weights file not found: {path}")
    if arch is not None:
        found = read_config(path)["arch"]
        if found != arch:
            raise ModelError(f"--model {arch} does not match the weights file, which is {found}")
    target = None if device is None else resolve_device(device)
    loaded, meta = load_weights(path)
    module = codec_model(loaded)
    quality = meta.get("quality")
    metric = meta.get("metric")
    lambdas = meta.get("lambdas") if module.num_rates else [meta.get("lambda")]
    digest = _digest(module)  # on the CPU: digesting device tensors would copy them back
    if target is not None:
        module.to(target)
    return LoadedModel(
        module,
        str(meta["arch"]),
        digest,
        int(quality) if isinstance(quality, int) and 0 <= quality <= MAX_QUALITY else 0,
        str(metric) if metric else None,
        Path(path),
        _lambdas(lambdas),
    )


def _lambdas(values: Any) -> tuple[float, ...]:
    """A weights file's λ list, if it is one (positive numbers); else nothing."""
    if not isinstance(values, list) or not values:
        return ()
    if not all(isinstance(v, (int, float)) and v > 0 for v in values):
        return ()
    return tuple(float(v) for v in values)


def _from_module(
    module: Any, quality: int | None, metric: str | None, device: str | torch.device | None = None
) -> LoadedModel:
    model = codec_model(module)
    if device is not None:
        module.to(resolve_device(device))  # in place, as nn.Module.to is
    module.eval()
    return LoadedModel(model, model.arch, _digest(module), int(quality or 0), metric)


def resolve_model(
    model: str | Any | None,
    quality: int | None,
    weights: str | os.PathLike[str] | None,
    metric: str | None = None,
    device: str | torch.device | None = None,
) -> LoadedModel:
    """The model to encode with (see the module docstring for the order), on ``device``."""
    if quality is not None and not 0 <= int(quality) <= MAX_QUALITY:
        raise ModelError(f"quality must be in 0..{MAX_QUALITY}, got {quality}")
    if weights is not None:
        if isinstance(model, str):
            _check_model_name(model)
        lm = _from_weights_file(weights, model if isinstance(model, str) else None, device)
        if quality is not None and lm.quality and quality != lm.quality:
            raise ModelError(
                f"--quality {quality} does not match the weights file (quality {lm.quality})"
            )
        if quality is not None and not lm.quality:
            lm.quality = int(quality)
        return lm
    if model is not None and not isinstance(model, str):
        return _from_module(model, quality, metric, device)
    if model is not None:
        _check_model_name(model)
    from licodec.zoo.pretrained import resolve_entry

    entry = resolve_entry(model, quality, metric)
    lm = _from_weights_file(entry.path, device=device)
    if lm.num_rates:
        lm.quality = entry.quality
    return lm


def _where_weights_are(c: Container) -> str:
    """``; ...`` naming the shipped or retired weights a file needs, or nothing."""
    from licodec.zoo.pretrained import ZooEntry, find_digest

    found = find_digest(c.model_id, c.weights_digest.hex())
    if found is None:
        return ""
    if isinstance(found, ZooEntry):
        return f"; the file's weights are the shipped {found.tag} (omit --weights)"
    return f"; the file's weights are {found.hint()}"


def _max_freq(cdf: Any, lengths: Any) -> int:
    """Largest symbol frequency in a CompressAI coder table (rows padded past their length)."""
    import torch

    d = cdf[:, 1:] - cdf[:, :-1]
    live = torch.arange(d.shape[1], device=d.device)[None] < (lengths.reshape(-1, 1) - 1)
    return int(d[live].max()) if bool(live.any()) else (1 << 16) - 1


def _memory_per_pixel(arch: str) -> int:
    from licodec.models import get_spec

    try:
        return get_spec(arch).memory_per_pixel or UNKNOWN_MEMORY_PER_PIXEL
    except KeyError:
        return UNKNOWN_MEMORY_PER_PIXEL


def _check_before_loading(c: Container, budget: int) -> None:
    """The decoder limits that need only the architecture's class attributes."""
    from licodec.models import get_spec

    try:
        spec = get_spec(c.model_id)
    except KeyError:
        return  # unknown: _decoder_for says so
    pad, y_stride = (
        getattr(spec.builder, "pad_multiple", None),
        getattr(spec.builder, "y_stride", None),
    )
    if isinstance(pad, int) and isinstance(y_stride, int) and pad > 0 and y_stride > 0:
        check_geometry(
            c,
            c.model_id,
            pad,
            4 * y_stride,
            budget,
            _memory_per_pixel(c.model_id),
        )


_GEOMETRIES: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], ModelGeometry]] = (
    weakref.WeakKeyDictionary()
)


def _geometry(lm: LoadedModel) -> ModelGeometry:
    """What the decoder limits need from the loaded model (its coder tables must be built).

    Cached per module until its coder tables change (``update()`` replaces them).
    """
    m = lm.module
    tables = [
        getattr(getattr(m, e, None), t, None)
        for e in ("gaussian_conditional", "entropy_bottleneck")
        for t in ("_quantized_cdf", "_cdf_length")
    ]
    key = (lm.arch, *((id(t), getattr(t, "_version", 0)) for t in tables))
    try:
        cached = _GEOMETRIES.get(m)
    except TypeError:  # not weak-referenceable
        cached = None
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        gc, eb = m.gaussian_conditional, m.entropy_bottleneck
        y_stride = int(m.y_stride)
        geo = ModelGeometry(
            arch=lm.arch,
            pad_multiple=lm.pad_multiple,
            z_stride=4 * y_stride,  # the hyperprior halves y twice (decompress: y = 4 z)
            y_channels=int(m.M),
            z_channels=int(eb.channels),
            num_slices=int(m.step_divisor),
            y_max_freq=min(_max_freq(gc._quantized_cdf, gc._cdf_length), (1 << 16) - 1),
            z_max_freq=min(_max_freq(eb._quantized_cdf, eb._cdf_length), (1 << 16) - 1),
            memory_per_pixel=_memory_per_pixel(lm.arch),
        )
    except (AttributeError, RuntimeError, ValueError) as exc:
        raise ModelError(f"{lm.arch} cannot decode files ({_one_line(exc)})") from None
    with contextlib.suppress(TypeError):
        _GEOMETRIES[m] = (key, geo)
    return geo


# -- results ---------------------------------------------------------------------


@dataclass
class EncodeResult:
    """What :meth:`Codec.encode` produced and measured."""

    data: bytes
    width: int
    height: int
    colour: str
    tiles: int
    bpp: float
    psnr: float
    seconds: float
    model: str
    notices: list[str] = field(default_factory=list)
    reconstruction: Image.Image | None = None
    stats: dict[str, int] = field(default_factory=dict)
    #: The quality on the 0-100 scale it was coded at (None: a fixed-rate model).
    quality: float | None = None
    #: The encoder effort (0: one pass of the analysis transform).
    effort: int = 0


@dataclass
class _Coded:
    """The coded tiles of one image at one quality."""

    records: list[TileRecord]
    crc: int
    sse: float  # squared error of the reconstruction (0 when not reconstructed)
    recon: np.ndarray | None


# -- pixel helpers ---------------------------------------------------------------


def _to_tensor(tile: np.ndarray, device: torch.device) -> torch.Tensor:
    """A (1, 3, H, W) float tensor in [0, 1] on ``device`` (scaled there: exact in float32)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(tile)).to(device)
    return t.permute(2, 0, 1)[None].float().div_(255)


def _to_pixels(x_hat: torch.Tensor, colour: ColourMode) -> np.ndarray:
    """uint8 H x W x 3 (or H x W for grayscale) from a (1, 3, H, W) reconstruction.

    Rounded where ``x_hat`` lives; only the uint8 pixels come back to the CPU.
    """
    import torch

    x = x_hat[0].clamp(0, 1)
    if colour.channels == 1:
        return x.mean(dim=0).mul_(255).round_().to(torch.uint8).cpu().contiguous().numpy()
    return x.mul(255).round_().to(torch.uint8).permute(1, 2, 0).cpu().contiguous().numpy()


def _check_portable_device(device: torch.device, portable: bool, what: str) -> None:
    """Portable coding computes in float64, which Apple's MPS does not have."""
    if portable and device.type == "mps":
        raise ModelError(
            f"{what} needs float64, which MPS does not support; use --device cpu"
            + (" or --no-portable" if what == "portable coding" else "")
        )


def _image_of(pixels: np.ndarray, c: Container, alpha: np.ndarray | None) -> Image.Image:
    """The decoded image with the metadata ``c`` carries (what the encoder's input had)."""
    icc = srgb_profile() if c.srgb else c.icc_profile
    return to_pil(pixels, c.colour, alpha, icc, exif=c.exif, xmp=c.xmp, text=c.text)


def _chain(tile_crc: int, crc: int) -> int:
    """Fold one tile's latent CRC into the file's decode checksum."""
    return zlib.crc32((tile_crc & 0xFFFFFFFF).to_bytes(4, "little"), crc)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# -- the codec -------------------------------------------------------------------


def _check_encoder_settings(
    quality: int | None, q: float | None, size: int | None, bpp: float | None, effort: int
) -> None:
    """One-line errors for settings that contradict each other or are out of range."""
    if q is not None and quality is not None:
        raise InputError("give quality (a trained-point index) or q (0-100), not both")
    if size is not None and bpp is not None:
        raise InputError("give a target size or a target bpp, not both")
    if (size is not None or bpp is not None) and (q is not None or quality is not None):
        raise InputError("a target size or bpp chooses the quality itself: drop the quality")
    if q is not None and not (math.isfinite(q) and 0 <= q <= QUALITY_MAX):
        raise InputError(f"q must be a number in 0..{QUALITY_MAX}, got {q}")
    if size is not None and size < 1:
        raise InputError(f"target size must be at least 1 byte, got {size}")
    if bpp is not None and not (math.isfinite(bpp) and 0 < bpp <= MAX_BPP):
        raise InputError(f"target bpp must be in (0, {MAX_BPP}], got {bpp}")
    if not 0 <= effort <= EFFORT_MAX:
        raise InputError(f"effort must be in 0..{EFFORT_MAX}, got {effort}")


class Codec:
    """A loaded model plus settings, for repeated compress/decompress calls.

    Args:
        model: a registry id (zoo weights), a model object, or ``None`` for the
            zoo default.
        quality: trained-point index (1..n) for the zoo lookup, or the rate of
            a variable-rate model (or a label for a model object).
        weights: a weights file in licodec's format (overrides the zoo).
        metric: metric label recorded for a model object ("mse", "ms-ssim").
        tile_size: tile side in pixels (rounded to the model's padding multiple).
        max_pixels: largest declared image a file may have when decoding.
        portable: compute the entropy parameters in float64 when encoding, so
            that the file decodes on any machine and device (recorded in the
            file; it costs time, see docs/format.md). Without it a file
            decodes only where the model's float32 arithmetic is bit-identical
            (same device, CPU instruction set and torch build); elsewhere
            decoding stops with a checksum error.
        device: where the networks run: "cpu" (default), "cuda", "cuda:N",
            "mps", "auto" (cuda, else mps, else cpu) or a ``torch.device``.
            Checked when the first model loads (:class:`ModelError` if this
            machine lacks it); a model object is moved there in place. The
            entropy coder runs on the CPU whatever the device.
        q: quality on the continuous 0-100 scale (variable-rate models; see
            :mod:`licodec.codec.quality`: six trained points sit at 0, 20, 40,
            60, 80, 100 and every q between them interpolates their gains).
            Not together with ``quality``.
        size: target file size in bytes: the encoder searches ``q`` for a file
            within 2 % of it, or raises :class:`~licodec.errors.TargetError`
            naming the nearest size it can reach.
        bpp: target bits per pixel (the same search); not with ``size``.
        effort: 0 (one pass, the default) to
            :data:`~licodec.codec.quality.EFFORT_MAX`: the encoder refines the
            latents of each tile by gradient descent for more steps at each
            level, for smaller files at the same quality. Files decode as any other.

    Decoding checks that a file was written by these weights (id and digest);
    a codec built without a model resolves each file's model through the zoo.
    """

    def __init__(
        self,
        model: str | Any | None = None,
        quality: int | None = None,
        weights: str | os.PathLike[str] | None = None,
        *,
        metric: str | None = None,
        tile_size: int = DEFAULT_TILE_SIZE,
        max_pixels: int = MAX_PIXELS,
        portable: bool = True,
        device: str | torch.device = "cpu",
        q: float | None = None,
        size: int | None = None,
        bpp: float | None = None,
        effort: int = 0,
    ) -> None:
        if tile_size < 1:
            raise InputError(f"tile size must be positive, got {tile_size}")
        _check_encoder_settings(quality, q, size, bpp, effort)
        self._model_arg = model
        self._quality = quality
        self._weights = weights
        self._metric = metric
        self.tile_size = int(tile_size)
        self.max_pixels = int(max_pixels)
        self.portable = bool(portable)
        self._device_spec = device
        self._device: torch.device | None = None
        self._encoder: LoadedModel | None = None
        self._decoders: dict[tuple[str, bytes], LoadedModel] = {}
        self.q = None if q is None else float(q)
        self.size = None if size is None else int(size)
        self.bpp = None if bpp is None else float(bpp)
        self.effort = int(effort)

    @property
    def explicit(self) -> bool:
        """Whether the caller chose the model (object or weights) rather than the zoo."""
        return self._weights is not None or (
            self._model_arg is not None and not isinstance(self._model_arg, str)
        )

    @property
    def device(self) -> torch.device:
        """The device the models run on, resolved on first use (this imports torch).

        Raises :class:`ModelError` when the name is malformed or this machine lacks it.
        """
        if self._device is None:
            self._device = resolve_device(self._device_spec)
        return self._device

    def load(self) -> LoadedModel:
        """Resolve (once) and return the model used for encoding, on :attr:`device`."""
        if self._encoder is None:
            self._encoder = resolve_model(
                self._model_arg, self._quality, self._weights, self._metric, self._device_spec
            )
        return self._encoder

    # -- encode --

    def encode(
        self,
        image: ImageSource,
        *,
        keep_alpha: bool = True,
        keep_metadata: str = "all",
        keep_reconstruction: bool = False,
        progress: Progress | None = None,
        name: str | None = None,
        step_progress: Progress | None = None,
    ) -> EncodeResult:
        """Compress ``image`` and report size, bpp, PSNR and the expected reconstruction.

        ``keep_metadata``: "all" (ICC profile, EXIF, XMP, PNG text), "icc" or "none".
        ``progress(done, total)`` follows the tiles, ``step_progress`` the
        refinement steps of all tiles (``effort`` > 0).
        """
        t0 = time.perf_counter()
        # The image is read before the model loads: a bad input costs no torch import.
        src = load_image(image, keep_alpha=keep_alpha, name=name, keep_metadata=keep_metadata)
        if self._device_spec != "cpu":  # refused before loading ("cpu": no torch before that)
            _check_portable_device(self.device, self.portable, "portable coding")
        lm = self.load()
        check_tile_size(self.tile_size, lm.pad_multiple, lm.arch)  # the decoder refuses smaller
        notices = list(src.notices)
        eff = effective_tile_size(self.tile_size, lm.pad_multiple)
        if eff != self.tile_size and max(src.width, src.height) > eff:
            notices.append(f"tile size {self.tile_size} rounded to {eff} for {lm.arch}")
        grid = plan_tiles(src.width, src.height, self.tile_size, lm.pad_multiple)
        code = self._start_code(lm)
        steps = 0
        lmbda = 0.0
        if self.effort:
            steps = effort_steps(self.effort)
        target = self._target_bytes(src.width, src.height)
        alpha = None if src.alpha is None else encode_alpha(src.alpha)

        def refined(c: int | None, prog: Progress | None) -> _Coded:
            lam = lm.lambda_at(c) if steps else 0.0
            return self._code_tiles(src, lm, grid, c, steps, lam, False, None, prog)

        if target is not None:
            from licodec.codec.ratecontrol import search_size

            if code is None:  # a fixed-rate model has no scale to search: say so
                lm.code_of(0)
            raw = src.width * src.height * (src.colour.channels + int(src.colour.has_alpha))
            if target > raw:
                raise TargetError(
                    f"target size {target} bytes is larger than the raw image ({raw} bytes); "
                    "a lossless format suits that better"
                )

            def size_at(c: int) -> int:
                return len(
                    serialise(
                        self._assemble(
                            src,
                            lm,
                            grid,
                            c,
                            self._code_tiles(src, lm, grid, c, 0, 0.0, False, None, None),
                            alpha,
                        )
                    )
                )

            found = search_size(size_at, target, start=code)
            code = found.code
            if steps:
                # Refinement makes files smaller at one quality: search again, refined,
                # starting where the plain sizes say the refined one will land.
                def refined_size(c: int) -> int:
                    return len(
                        serialise(
                            self._assemble(src, lm, grid, c, refined(c, step_progress), alpha)
                        )
                    )

                code = search_size(refined_size, target, start=code).code
        if steps:
            lmbda = lm.lambda_at(code)
        coded = self._code_tiles(
            src,
            lm,
            grid,
            code,
            steps,
            lmbda,
            True,
            progress,
            step_progress,
            keep_reconstruction,
        )
        container = self._assemble(src, lm, grid, code, coded, alpha)
        data = serialise(container)
        mse = coded.sse / src.pixels.size
        psnr = 10 * math.log10(255**2 / mse) if mse > 0 else math.inf
        rec_img = None
        if coded.recon is not None:
            rec_img = _image_of(coded.recon, container, src.alpha)
        return EncodeResult(
            data=data,
            width=src.width,
            height=src.height,
            colour=src.colour.name,
            tiles=len(coded.records),
            bpp=len(data) * 8 / (src.width * src.height),
            psnr=psnr,
            seconds=time.perf_counter() - t0,
            model=lm.arch,
            notices=notices,
            reconstruction=rec_img,
            stats=dict(container.stats),
            quality=None if code is None else quality_of(code),
            effort=self.effort,
        )

    def _start_code(self, lm: LoadedModel) -> int | None:
        """The quality code to code at (None: the model's trained point, fixed-rate models)."""
        if self.q is not None:
            return lm.code_of(self.q)
        if not lm.num_rates:
            return None
        lm.rate_kwargs()  # the trained point exists (a weights file has none by default)
        code = point_code(lm.quality, lm.num_rates)
        if code is None:  # a point table the 0-100 grid does not hit exactly
            raise ModelError(
                f"{lm.arch} has {lm.num_rates} trained points, which the 0-100 scale cannot "
                "place exactly; pass quality=INDEX instead of q"
            )
        return code

    def _target_bytes(self, width: int, height: int) -> int | None:
        if self.size is not None:
            return self.size
        if self.bpp is not None:
            return max(1, round(self.bpp * width * height / 8))
        return None

    def _code_tiles(
        self,
        src: Any,
        lm: LoadedModel,
        grid: tuple[int, int] | None,
        code: int | None,
        steps: int,
        lmbda: float,
        reconstruct: bool,
        progress: Progress | None,
        step_progress: Progress | None,
        keep_reconstruction: bool = False,
    ) -> _Coded:
        """Code every tile at ``code`` (refined for ``steps`` steps when > 0)."""
        import torch  # already loaded with the model

        device = self.device
        rects = tile_rects(src.width, src.height, grid)
        recon = np.empty_like(src.pixels) if keep_reconstruction else None
        records: list[TileRecord] = []
        crc = 0
        sse = 0.0
        model = lm.module
        rate = lm.rate_kwargs(None, code)
        done_steps = 0

        def stepped(done: int, total: int) -> None:
            if step_progress is not None:
                step_progress(done_steps + done, steps * len(rects))

        for i, (x, y, w, h) in enumerate(rects):
            with torch.no_grad():  # not inference_mode: refinement takes gradients through it
                xt = _to_tensor(src.rgb_tile(x, y, w, h), device)
            try:
                latents = None
                if steps:
                    from licodec.entropy.refine import refine_latents

                    r = refine_latents(
                        model, xt, lmbda, steps, rate=rate.get("rate"), progress=stepped
                    )
                    latents = (r.y, r.z)
                    done_steps += steps
                with torch.inference_mode():
                    out = model.compress(
                        xt, **rate, portable=self.portable, reconstruct=reconstruct, latents=latents
                    )
                strings = out["strings"]
                shape = tuple(int(s) for s in out["shape"])
                if (
                    not 1 <= len(strings) <= MAX_STREAMS
                    or any(len(per_image) != 1 for per_image in strings)
                    or len(shape) != 2
                    or "latent_crc" not in out
                ):
                    raise ModelError(f"{lm.arch}.compress returned an unsupported stream layout")
                # the file's order: side information first (the reverse of the model's)
                streams = [bytes(per_image[0]) for per_image in reversed(strings)]
                x_hat = out.get("x_hat")
            except ModelError:
                raise
            except RuntimeError as exc:
                raise ModelError(f"{lm.arch} failed to code tile {i}: {_one_line(exc)}") from None
            bh, bw = latent_shape_bound(h, w)
            if not (1 <= shape[0] <= bh and 1 <= shape[1] <= bw) or not all(streams):
                raise ModelError(f"{lm.arch} produced a latent the format cannot store")
            if reconstruct:
                if not isinstance(x_hat, torch.Tensor) or tuple(x_hat.shape) != (1, 3, h, w):
                    raise ModelError(
                        f"{lm.arch}.compress returned no reconstruction of shape (1, 3, {h}, {w})"
                    )
                px = _to_pixels(x_hat, src.colour)
                ref = src.pixels[y : y + h, x : x + w]
                sse += float(np.square(px.astype(np.float64) - ref).sum())
                if recon is not None:
                    recon[y : y + h, x : x + w] = px
            crc = _chain(out["latent_crc"], crc)
            records.append(TileRecord(shape, *streams))
            if progress is not None:
                progress(i + 1, len(rects))
        return _Coded(records, crc, sse, recon)

    def _assemble(
        self,
        src: Any,
        lm: LoadedModel,
        grid: tuple[int, int] | None,
        code: int | None,
        coded: _Coded,
        alpha: tuple[Any, bytes] | None,
    ) -> Container:
        """The container of ``coded`` tiles (what :func:`serialise` writes)."""
        quality, rate_code = lm.quality, None
        if code is not None:
            n = lm.num_rates
            exact = point_of(code, n)
            quality = exact if exact is not None else nearest_point(code, n)
            rate_code = None if exact is not None else code
        alpha_method, alpha_data = (None, None) if alpha is None else alpha
        srgb = src.icc_profile is not None and is_standard_srgb(src.icc_profile)
        return Container(
            model_id=lm.arch,
            weights_digest=lm.digest,
            width=src.width,
            height=src.height,
            colour=src.colour,
            tiles=coded.records,
            check_crc=coded.crc,
            quality=quality,
            metric=lm.metric,
            tile_size=grid,
            icc_profile=None if srgb else src.icc_profile,
            srgb=srgb,
            exif=src.exif,
            xmp=src.xmp,
            text=src.text,
            alpha_method=alpha_method,
            alpha_data=alpha_data,
            portable=self.portable,
            rate_code=rate_code,
        )

    def compress(
        self, image: ImageSource, *, keep_alpha: bool = True, keep_metadata: str = "all"
    ) -> bytes:
        """The ``.lic`` bytes of ``image``; conversion notices go to the ``licodec`` logger."""
        result = self.encode(image, keep_alpha=keep_alpha, keep_metadata=keep_metadata)
        for note in result.notices:
            logger.warning("%s", note)
        return result.data

    # -- decode --

    #: Budget for the decoder's estimated peak working memory (``--max-memory``);
    #: files that would need more are refused before decoding (docs/format.md).
    max_memory: int = DEFAULT_MAX_MEMORY
    #: Most bytes :meth:`decompress` reads from a path (``--max-input``).
    max_input: int = MAX_INPUT_BYTES

    def _decoder_for(self, c: Container) -> LoadedModel:
        if c.model_id not in _known_models():
            raise ModelError(f"file needs model {c.model_id!r}, which this licodec does not know")
        if self.explicit:
            lm = self.load()
        else:
            # Weights are found by the digest the file names: released weights are frozen,
            # so a file made with any shipped version keeps decoding after a reship.
            key = (c.model_id, c.weights_digest)
            lm_opt = self._decoders.get(key)
            if lm_opt is None:
                if self._encoder is not None and self._encoder.digest == c.weights_digest:
                    lm_opt = self._encoder
                else:
                    from licodec.zoo.pretrained import entry_for_digest

                    entry = entry_for_digest(c.model_id, c.weights_digest.hex(), c.quality)
                    lm_opt = _from_weights_file(entry.path, device=self._device_spec)
                self._decoders[key] = lm_opt
            lm = lm_opt
        if lm.arch != c.model_id:
            raise ModelError(f"file needs model {c.model_id}, but the given weights are {lm.arch}")
        if lm.digest != c.weights_digest:
            raise ModelError(
                f"file was encoded with {c.model_id} weights {c.weights_digest.hex()}, "
                f"but the loaded weights are {lm.digest.hex()}{_where_weights_are(c)}"
            )
        return lm

    def decode(
        self,
        data: bytes | bytearray | memoryview,
        *,
        progress: Progress | None = None,
        max_memory: int | None = None,
    ) -> Image.Image:
        """Decode ``.lic`` bytes into a PIL image (mode RGB, L, RGBA or LA).

        Before anything is allocated for the image or passed to the model, the
        header is checked against the decoder limits (:mod:`licodec.codec.limits`);
        ``max_memory`` (default :attr:`max_memory`) is the memory budget.
        """
        c = parse(data, self.max_pixels)
        budget = self.max_memory if max_memory is None else max_memory
        check_header(c)
        _check_before_loading(c, budget)  # a hostile file costs no weights loading
        if self._device_spec != "cpu":  # before the weights move there ("cpu": no torch yet)
            _check_portable_device(self.device, c.portable, "a portable file")
        lm = self._decoder_for(c)
        geo = _geometry(lm)
        check_decode(c, geo, budget)
        import torch  # already loaded with the model; a malformed file got no further

        alpha = None
        if c.colour.has_alpha:
            assert c.alpha_method is not None and c.alpha_data is not None
            alpha = decode_alpha(c.alpha_method, c.alpha_data, c.width, c.height)
        shape = (c.height, c.width) if c.colour.channels == 1 else (c.height, c.width, 3)
        out = np.empty(shape, dtype=np.uint8)
        rects = tile_rects(c.width, c.height, c.tile_size)
        crc = 0
        model = lm.module
        if c.rate_code is not None and not lm.num_rates:
            raise FormatError(
                f"file names a quality between trained points, but {lm.arch} is fixed-rate"
            )
        rate = lm.rate_kwargs(c.quality, c.rate_code)
        with torch.inference_mode():
            for i, ((x, y, w, h), t) in enumerate(zip(rects, c.tiles)):
                try:
                    dec = model.decompress(
                        [[s] for s in reversed(t.streams)],
                        t.z_shape,
                        (h, w),
                        rate.get("rate"),
                        portable=c.portable,
                        coder=c.coder,
                    )
                except (RuntimeError, ValueError, IndexError, OverflowError) as exc:
                    if c.version >= 2 and not c.portable:
                        # Most likely the entropy parameters came out differently here (the
                        # decoder lost step before the checksum could say so), as below.
                        raise ModelError(
                            f"tile {i} cannot be decoded ({_one_line(exc)}): it was coded "
                            "without --portable on a machine whose float arithmetic differs "
                            "from this one's, or it was altered"
                        ) from None
                    raise FormatError(f"tile {i} cannot be decoded ({_one_line(exc)})") from None
                x_hat = dec["x_hat"]
                if tuple(x_hat.shape) != (1, 3, h, w):
                    raise FormatError(
                        f"tile {i}: latent shape {t.z_shape[0]}x{t.z_shape[1]} does not fit "
                        f"its {w}x{h} pixels"
                    )
                px = _to_pixels(x_hat, c.colour)
                if c.version >= 2:
                    crc = _chain(int(dec.get("latent_crc", -1)), crc)
                else:  # version 1 stored the CRC32 of the decoded pixels
                    crc = zlib.crc32(px.tobytes(), crc)
                out[y : y + h, x : x + w] = px
                if progress is not None:
                    progress(i + 1, len(rects))
        if crc != c.check_crc:
            if c.version < 2:
                hint = (
                    "it was written by licodec 0.1 on a machine whose float arithmetic differs "
                    "from this one's, or it was altered"
                )
            elif c.portable:
                hint = (
                    "the file was altered, or this machine computes the model's coder tables "
                    "or float64 arithmetic differently from the encoder's"
                )
            else:
                hint = (
                    "it was coded without --portable on a machine whose float arithmetic "
                    "differs from this one's, or it was altered"
                )
            raise ModelError(
                f"decoding does not reproduce the encoder's latents (decode checksum mismatch): {hint}"
            )
        return _image_of(out, c, alpha)

    def decompress(
        self, data: bytes | bytearray | memoryview | str | os.PathLike[str]
    ) -> Image.Image:
        """Decode ``.lic`` bytes (or a path to a ``.lic`` file) into a PIL image."""
        if isinstance(data, (str, os.PathLike)):
            from licodec.codec.files import read_bytes

            data = read_bytes(str(data), self.max_input)
        return self.decode(data)


# -- module-level convenience ------------------------------------------------------


def compress(
    image: ImageSource,
    model: str | Any | None = None,
    quality: int | None = None,
    weights: str | os.PathLike[str] | None = None,
    *,
    tile_size: int = DEFAULT_TILE_SIZE,
    keep_alpha: bool = True,
    keep_metadata: str = "all",
    portable: bool = True,
    device: str | torch.device = "cpu",
) -> bytes:
    """Compress ``image`` (path, bytes, PIL image or uint8 array) into ``.lic`` bytes.

    ``device``: where the model runs (see :class:`Codec`).
    """
    codec = Codec(model, quality, weights, tile_size=tile_size, portable=portable, device=device)
    return codec.compress(image, keep_alpha=keep_alpha, keep_metadata=keep_metadata)


def decompress(
    data: bytes | bytearray | memoryview | str | os.PathLike[str],
    *,
    model: Any | None = None,
    weights: str | os.PathLike[str] | None = None,
    max_pixels: int = MAX_PIXELS,
    device: str | torch.device = "cpu",
) -> Image.Image:
    """Decode ``.lic`` bytes (or a file path) into a PIL image; ``device`` as for :class:`Codec`."""
    return Codec(model, None, weights, max_pixels=max_pixels, device=device).decompress(data)
