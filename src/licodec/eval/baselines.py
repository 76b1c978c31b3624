"""Classical codec baselines measured on real files.

Each codec encodes an 8-bit RGB image to the bytes of a real file, decodes
those bytes back to RGB, and is scored with :func:`licodec.eval.metrics.image_metrics`
(bpp from the byte length, PSNR / MS-SSIM from the decoded pixels). The
settings follow what the published curves use, so that our numbers can be
checked against them:

* ``jpeg``: Pillow (libjpeg-turbo), 4:4:4 (``subsampling=0``), quality sweep.
* ``webp``: Pillow (libwebp), lossy, ``method=6``, quality sweep (WebP is 4:2:0 only).
* ``jpeg2000``: Pillow (OpenJPEG), irreversible 9/7 wavelet with the colour
  transform on (``mct=1``; without it about 4 dB are lost), rate sweep in
  target bpp (``quality_mode="rates"``), raw J2K codestream.
* ``avif``: Pillow (libavif/aom), 4:4:4, full range, aom tuned for PSNR
  (``tune=psnr``; libavif's default is SSIM), speed 6, quality sweep.
* ``jxl``: pillow-jxl-plugin (libjxl), quality sweep (maps to the butteraugli distance).
* ``hevc``: PyAV's libx265, one intra frame in 4:4:4 from BT.601 full-range
  YCbCr (the conversion BPG uses), ``info=0``, psycho-visual tuning off
  (``tune=psnr``), QP sweep, raw Annex-B bitstream: the stand-in for BPG.

:func:`run_baselines` sweeps a list of images in worker processes, writes one
CompressAI-format JSON per codec after every finished image (so that an
interrupted run resumes where it stopped) and averages over images.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from licodec.errors import InputError, OutputError

__all__ = [
    "CODECS",
    "BaselineCodec",
    "evaluate_image",
    "get_codec",
    "is_monotone",
    "list_images",
    "run_baselines",
]

# --------------------------------------------------------------------------- codecs


@dataclass(frozen=True)
class BaselineCodec:
    """A classical codec with one quality knob.

    ``sweep`` is the default list of knob values in the codec's own unit, and
    ``higher_is_better`` says which way quality goes (False for QP).
    ``knob_range`` is the interval a search for a target file size may use and
    ``integer_knob`` whether the knob takes whole numbers only.
    """

    name: str
    label: str
    knob: str
    sweep: tuple[float, ...]
    higher_is_better: bool
    encode: Callable[[np.ndarray, float], bytes]
    decode: Callable[[bytes], np.ndarray]
    settings: dict[str, Any] = field(default_factory=dict)
    check: Callable[[], str | None] = field(default=lambda: None)
    knob_range: tuple[float, float] = (0.0, 100.0)
    integer_knob: bool = True

    def available(self) -> str | None:
        """None when usable here, else why not (a missing library or feature)."""
        return self.check()

    def ordered(self, values: Sequence[float]) -> list[float]:
        """Knob values from the lowest to the highest quality."""
        return sorted(values, reverse=not self.higher_is_better)

    def library_versions(self) -> dict[str, str]:
        return _library_versions(self.name)


def _pil_decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _pil_encode(fmt: str, **options: Any) -> Callable[[np.ndarray, float], bytes]:
    def encode(rgb: np.ndarray, value: float, _fmt: str = fmt) -> bytes:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(buf, format=_fmt, **_knob_options(_fmt, value), **options)
        return buf.getvalue()

    return encode


def _knob_options(fmt: str, value: float) -> dict[str, Any]:
    if fmt == "JPEG2000":
        # value is the target bpp; OpenJPEG takes a compression ratio against 24 bpp.
        return {"quality_layers": [24.0 / float(value)]}
    return {"quality": round(value)}


def _check_pil(feature: str) -> Callable[[], str | None]:
    def check() -> str | None:
        from PIL import features

        if not features.check(feature):
            return f"this Pillow build has no {feature} support"
        return None

    return check


def _check_jxl() -> str | None:
    from importlib.util import find_spec

    if find_spec("pillow_jxl") is None:
        return "pillow-jxl-plugin is not installed (pip install 'licodec[eval]')"
    return None


def _jxl_encode(rgb: np.ndarray, value: float) -> bytes:
    from PIL import Image

    from licodec.codec.image_io import register_plugins

    register_plugins()

    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(
        buf, format="JXL", quality=round(value), effort=7, num_threads=1
    )
    return buf.getvalue()


def _jxl_decode(data: bytes) -> np.ndarray:
    from licodec.codec.image_io import register_plugins

    register_plugins()
    return _pil_decode(data)


def _check_avif() -> str | None:
    from PIL import features

    if not features.check("avif"):
        return "this Pillow build has no AVIF support (needs Pillow >= 11 with libavif)"
    return None


# BT.601 full-range RGB <-> YCbCr (JPEG/JFIF matrix), as BPG converts.
_RGB2YCC = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
)
_YCC2RGB = np.linalg.inv(_RGB2YCC)


def rgb_to_ycbcr444(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3, H, W) uint8 full-range BT.601 Y, Cb, Cr planes."""
    ycc = np.einsum("ij,hwj->ihw", _RGB2YCC, rgb.astype(np.float64))
    ycc[1:] += 128.0
    return np.clip(np.rint(ycc), 0, 255).astype(np.uint8)


def ycbcr444_to_rgb(planes: np.ndarray) -> np.ndarray:
    """(3, H, W) uint8 full-range BT.601 Y, Cb, Cr planes -> (H, W, 3) uint8 RGB."""
    ycc = planes.astype(np.float64)
    ycc[1:] -= 128.0
    rgb = np.einsum("ij,jhw->hwi", _YCC2RGB, ycc)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


_X265_PRESET = "medium"


def _check_hevc() -> str | None:
    try:
        import av
    except ImportError:
        return "PyAV is not installed (pip install 'licodec[eval]')"
    if "libx265" not in av.codecs_available:
        return "this PyAV build has no libx265 encoder"
    return None


def _hevc_encode(rgb: np.ndarray, value: float) -> bytes:
    import av

    h, w = rgb.shape[:2]
    buf = io.BytesIO()
    with av.open(buf, "w", format="hevc") as out:
        stream = out.add_stream("libx265", rate=1)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv444p"
        stream.codec_context.color_range = 2  # AVCOL_RANGE_JPEG: full range
        stream.codec_context.colorspace = 5  # AVCOL_SPC_BT470BG: BT.601 matrix
        # ipratio=1: x265 otherwise codes an I frame ~3 QP finer than asked, so
        # the knob would not be the QP in the stream.
        stream.options = {
            "preset": _X265_PRESET,
            "tune": "psnr",  # psy-rd=0, psy-rdoq=0, aq off: optimise for PSNR like BPG
            "x265-params": (
                f"qp={round(value)}:ipratio=1:keyint=1:info=0:log-level=error:"
                "pools=1:frame-threads=1:range=full:colormatrix=bt470bg"
            ),
        }
        frame = _av_frame(rgb_to_ycbcr444(rgb))
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def _av_frame(planes: np.ndarray) -> Any:
    import av

    frame = av.VideoFrame.from_ndarray(planes, format="yuv444p")
    frame.color_range = 2
    frame.pts = 0
    return frame


def _hevc_decode(data: bytes) -> np.ndarray:
    import av

    with av.open(io.BytesIO(data), "r", format="hevc") as inp:
        frames = list(inp.decode(video=0))
    if len(frames) != 1:
        raise RuntimeError(f"HEVC stream decoded to {len(frames)} frames, expected 1")
    frame = frames[0]
    if frame.format.name != "yuv444p":
        raise RuntimeError(f"HEVC stream decoded as {frame.format.name}, expected yuv444p")
    return ycbcr444_to_rgb(frame.to_ndarray())


def _build_codecs() -> dict[str, BaselineCodec]:
    codecs = [
        BaselineCodec(
            name="jpeg",
            label="JPEG 4:4:4 (Pillow)",
            knob="quality",
            sweep=(3, 5, 8, 12, 20, 30, 50, 70, 85, 92),
            higher_is_better=True,
            encode=_pil_encode("JPEG", subsampling=0, optimize=True),
            decode=_pil_decode,
            settings={"subsampling": "4:4:4", "optimize": True},
            check=_check_pil("jpg"),
            knob_range=(1, 100),
        ),
        BaselineCodec(
            name="webp",
            label="WebP (Pillow)",
            knob="quality",
            sweep=(0, 5, 12, 25, 40, 55, 70, 82, 90, 94),
            higher_is_better=True,
            encode=_pil_encode("WEBP", method=6, lossless=False),
            decode=_pil_decode,
            settings={"method": 6, "lossless": False, "subsampling": "4:2:0"},
            check=_check_pil("webp"),
            knob_range=(0, 100),
        ),
        BaselineCodec(
            name="jpeg2000",
            label="JPEG 2000 (Pillow/OpenJPEG)",
            knob="target_bpp",
            sweep=(0.1, 0.15, 0.22, 0.33, 0.5, 0.75, 1.1, 1.5, 2.0),
            higher_is_better=True,
            encode=_pil_encode(
                "JPEG2000", irreversible=True, mct=1, quality_mode="rates", no_jp2=True
            ),
            decode=_pil_decode,
            settings={
                "irreversible": True,
                "mct": 1,
                "quality_mode": "rates",
                "container": "J2K codestream",
            },
            check=_check_pil("jpg_2000"),
            knob_range=(0.005, 16.0),
            integer_knob=False,
        ),
        BaselineCodec(
            name="avif",
            label="AVIF 4:4:4 (Pillow/libavif)",
            knob="quality",
            sweep=(5, 12, 20, 30, 40, 50, 60, 70, 80),
            higher_is_better=True,
            # libavif tunes aom for SSIM by default; tune=psnr is ~8 % fewer bits at equal
            # PSNR on Kodak, the same choice as x265's tune=psnr below.
            encode=_pil_encode(
                "AVIF",
                subsampling="4:4:4",
                range="full",
                speed=6,
                max_threads=1,
                advanced={"tune": "psnr"},
            ),
            decode=_pil_decode,
            settings={"subsampling": "4:4:4", "range": "full", "speed": 6, "tune": "psnr"},
            check=_check_avif,
            knob_range=(0, 100),
        ),
        BaselineCodec(
            name="jxl",
            label="JPEG XL (libjxl)",
            knob="quality",
            sweep=(1, 10, 20, 30, 45, 60, 75, 85, 90, 93),
            higher_is_better=True,
            encode=_jxl_encode,
            decode=_jxl_decode,
            settings={"effort": 7},
            check=_check_jxl,
            knob_range=(0, 99),  # 100 switches libjxl to lossless
        ),
        BaselineCodec(
            name="hevc",
            label="HEVC intra 4:4:4 (x265)",
            knob="qp",
            sweep=(44, 41, 38, 35, 32, 29, 26, 23, 20, 18),
            higher_is_better=False,
            encode=_hevc_encode,
            decode=_hevc_decode,
            settings={
                "pix_fmt": "yuv444p",
                "colour": "BT.601 full-range YCbCr",
                "preset": _X265_PRESET,
                "tune": "psnr",
                "x265-params": "ipratio=1:keyint=1:info=0",
                "container": "raw HEVC Annex-B stream",
            },
            check=_check_hevc,
            knob_range=(0, 51),
        ),
    ]
    return {c.name: c for c in codecs}


CODECS: dict[str, BaselineCodec] = _build_codecs()


def get_codec(name: str) -> BaselineCodec:
    """The codec called ``name``; an unknown name is an InputError listing the known ones."""
    try:
        return CODECS[name.strip().lower()]
    except KeyError:
        raise InputError(f"unknown codec {name!r} (choose from {', '.join(CODECS)})") from None


def _library_versions(name: str) -> dict[str, str]:
    import PIL
    from PIL import features

    versions = {"Pillow": PIL.__version__}
    feature = {"jpeg": "libjpeg_turbo", "webp": "webp", "jpeg2000": "jpg_2000", "avif": "avif"}
    if name in feature:
        v = features.version(feature[name])
        if v:
            versions[feature[name]] = str(v)
    if name == "jxl":
        from importlib.metadata import version

        versions["pillow-jxl-plugin"] = version("pillow-jxl-plugin")
    if name == "hevc":
        import av

        versions["PyAV"] = av.__version__
        with contextlib.suppress(AttributeError, KeyError):
            versions["libavcodec"] = ".".join(map(str, av.library_versions["libavcodec"]))
    return versions


# --------------------------------------------------------------------------- one image


def list_images(directory: str | Path) -> list[Path]:
    """The image files directly inside ``directory``, sorted by name."""
    d = Path(directory)
    if not d.exists():
        raise InputError(f"{d}: no such directory")
    if not d.is_dir():
        raise InputError(f"{d}: not a directory")
    from licodec.codec.image_io import image_extensions

    extensions = image_extensions()
    images = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in extensions)
    if not images:
        raise InputError(f"{d}: no images found (no file with an extension Pillow reads)")
    return images


def evaluate_image(
    codec: BaselineCodec | str, path: str | Path, values: Sequence[float]
) -> dict[str, Any]:
    """Encode, decode and score one image at every knob value (ordered as given).

    Returns a per-image record: ``{"size": [W, H], "<knob>": [...], "bpp": [...],
    "psnr-rgb": [...], "ms-ssim-rgb": [...], "ms-ssim-db-rgb": [...],
    "encoding_time": [...], "decoding_time": [...]}``.
    """
    from licodec.codec.image_io import read_rgb
    from licodec.eval.metrics import image_metrics

    c = get_codec(codec) if isinstance(codec, str) else codec
    rgb = read_rgb(path)
    record: dict[str, Any] = {"size": [int(rgb.shape[1]), int(rgb.shape[0])], c.knob: list(values)}
    for value in values:
        t0 = time.perf_counter()
        data = c.encode(rgb, value)
        t1 = time.perf_counter()
        decoded = c.decode(data)
        t2 = time.perf_counter()
        if decoded.shape != rgb.shape:
            raise RuntimeError(
                f"{c.name} decoded {Path(path).name} at {c.knob}={value} to shape "
                f"{decoded.shape}, expected {rgb.shape}"
            )
        metrics = image_metrics(rgb, decoded, len(data))
        metrics["encoding_time"] = t1 - t0
        metrics["decoding_time"] = t2 - t1
        for key, v in metrics.items():
            record.setdefault(key, []).append(v)
    return record


def is_monotone(values: Sequence[float]) -> bool:
    """True when ``values`` strictly increase."""
    return all(b > a for a, b in itertools.pairwise(values))


# --------------------------------------------------------------------------- sweeps


def _worker_init() -> None:
    # Workers score images one at a time; extra torch threads only fight for
    # the cores the other workers use.
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def _task(codec_name: str, path: str, values: list[float]) -> dict[str, Any]:
    return evaluate_image(codec_name, path, values)


@dataclass
class _Output:
    codec: BaselineCodec
    path: Path
    values: list[float]
    per_image: dict[str, Any]
    meta: dict[str, Any]


def _open_output(
    codec: BaselineCodec, path: Path, values: list[float], images: list[Path], overwrite: bool
) -> _Output:
    from licodec import __version__
    from licodec.eval.results import load_results

    meta = {
        "codec": codec.name,
        "knob": codec.knob,
        "values": values,
        "settings": codec.settings,
        "libraries": codec.library_versions(),
        "licodec": __version__,
    }
    per_image: dict[str, Any] = {}
    if path.exists() and not overwrite:
        old = load_results(path)
        old_meta = old.meta
        if old_meta.get("codec") != codec.name or old.per_image is None:
            raise OutputError(
                f"{path} exists and is not a {codec.name} baselines file; "
                "choose another output directory or pass --overwrite"
            )
        if [float(v) for v in old_meta.get("values", [])] != [float(v) for v in values]:
            raise OutputError(
                f"{path} was made with {codec.knob} {old_meta.get('values')}, not {values}; "
                "choose another output directory or pass --overwrite"
            )
        if old_meta.get("settings") != codec.settings:
            raise OutputError(
                f"{path} was made with other {codec.name} settings; "
                "choose another output directory or pass --overwrite"
            )
        names = {p.name for p in images}
        stray = sorted(set(old.per_image) - names)
        if stray:
            raise OutputError(
                f"{path} holds results for images not in the input ({stray[0]}, ...); "
                "choose another output directory or pass --overwrite"
            )
        for name, rec in old.per_image.items():
            if not isinstance(rec, dict) or not all(
                isinstance(rec.get(k), list) and len(rec[k]) == len(values)
                for k in ("bpp", "psnr-rgb")
            ):
                raise OutputError(
                    f"{path}: the entry for {name} is damaged; pass --overwrite to start afresh"
                )
        per_image = dict(old.per_image)
    return _Output(codec, path, values, per_image, meta)


def _write_output(out: _Output, images: list[Path], dataset: str | None) -> dict[str, Any] | None:
    from licodec.eval.results import mean_results, write_json_atomic

    done = [p.name for p in images if p.name in out.per_image]
    meta = dict(out.meta)
    meta["images"] = done
    meta["num_images"] = len(done)
    meta["complete"] = len(done) == len(images)
    if dataset:
        meta["dataset"] = dataset
    data: dict[str, Any] = {
        "name": out.codec.label,
        "description": _describe(out.codec),
        "meta": meta,
    }
    if done:
        records = [out.per_image[n] for n in done]
        means = mean_results(
            [{k: v for k, v in r.items() if k not in ("size", out.codec.knob)} for r in records]
        )
        results: dict[str, Any] = {out.codec.knob: list(out.values)}
        results.update(means)
        data["results"] = results
        monotone = is_monotone(means["bpp"]) and is_monotone(means["psnr-rgb"])
        meta["monotone"] = monotone
    else:  # nothing measured yet: no file (an empty curve is not a valid results file)
        return None
    data["per_image"] = {n: out.per_image[n] for n in done}
    write_json_atomic(data, out.path)
    return data


def _describe(codec: BaselineCodec) -> str:
    libs = ", ".join(f"{k} {v}" for k, v in codec.library_versions().items())
    opts = ", ".join(f"{k}={v}" for k, v in codec.settings.items())
    return f"{codec.label}: {codec.knob} sweep; {opts}; {libs}; measured by licodec on real files"


def run_baselines(
    images: Sequence[str | Path],
    codecs: Sequence[str],
    out_dir: str | Path,
    workers: int = 1,
    values: Mapping[str, Sequence[float]] | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
    dataset: str | None = None,
) -> dict[str, Path]:
    """Sweep every codec over every image; one ``<codec>.json`` per codec in ``out_dir``.

    Images already in an existing output (same codec, knob values and
    settings) are skipped, so an interrupted run resumes. ``values`` overrides
    a codec's default sweep. Returns the output path of each codec.
    """
    from tqdm.auto import tqdm

    from licodec.eval.sweep import run_sweep

    paths = [Path(p) for p in images]
    if not paths:
        raise InputError("no images to evaluate")
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        raise InputError("image file names must be unique")
    selected = [get_codec(c) for c in codecs]
    if not selected:
        raise InputError("no codecs selected")
    for c in selected:
        why = c.available()
        if why:
            raise InputError(f"codec {c.name} is unavailable: {why}")
    if workers < 1:
        raise InputError("--workers must be at least 1")
    out_root = Path(out_dir)
    if out_root.exists() and not out_root.is_dir():
        raise OutputError(f"{out_root}: exists and is not a directory")

    outputs: dict[str, _Output] = {}
    tasks: list[tuple[str, Path]] = []
    for c in selected:
        sweep = list((values or {}).get(c.name) or c.sweep)
        sweep = [float(v) for v in c.ordered(sweep)]
        out = _open_output(c, out_root / f"{c.name}.json", sweep, paths, overwrite)
        outputs[c.name] = out
        _write_output(out, paths, dataset)
        tasks += [(c.name, p) for p in paths if p.name not in out.per_image]

    bar = tqdm(
        total=len(tasks), unit="img", disable=(not progress) if progress is not None else None
    )

    def finish(task: tuple[str, Path], record: dict[str, Any]) -> None:
        codec_name, path = task
        out = outputs[codec_name]
        out.per_image[path.name] = record
        _write_output(out, paths, dataset)
        bar.set_postfix_str(f"{codec_name} {path.name}", refresh=False)
        bar.update(1)

    def args(task: tuple[str, Path]) -> tuple[Any, ...]:
        return task[0], str(task[1]), outputs[task[0]].values

    try:
        with _ThreadLimit():
            run_sweep(
                tasks,
                finish,
                serial=lambda t: _task(*args(t)),
                remote=_task,
                remote_args=args,
                workers=workers,
                initializer=_worker_init,
            )
    finally:
        bar.close()

    for out in outputs.values():
        data = _write_output(out, paths, dataset)
        if data is not None and not data["meta"].get("monotone", True):
            import warnings

            warnings.warn(
                f"{out.codec.name}: the mean curve is not monotone in {out.codec.knob} "
                f"(bpp {data['results']['bpp']}, PSNR {data['results']['psnr-rgb']})",
                RuntimeWarning,
                stacklevel=2,
            )
    return {name: out.path for name, out in outputs.items()}


class _ThreadLimit:
    """Run with one torch thread in this process, restoring the old count afterwards."""

    def __enter__(self) -> None:
        self._old: int | None = None
        try:
            import torch

            self._old = torch.get_num_threads()
            torch.set_num_threads(1)
        except ImportError:  # pragma: no cover
            pass

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            import torch

            torch.set_num_threads(self._old)
