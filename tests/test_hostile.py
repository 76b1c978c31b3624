"""Hostile files (issue 18): the decoder's memory and work are bounded by what a file justifies.

* The three reported attacks (a decompression bomb, unbounded reads, work
  amplification), each refused in a fresh process in under 2 s with a peak RSS
  under 1.5 GiB.
* A mutation fuzzer over RGB, L, RGBA, metadata and tiled files (5,000 files
  here, 100,000 in the slow suite): a licodec error or a decode that equals the
  original or differs only in what the edited header field means.
* No legitimate file is refused: the limits checked arithmetically against the
  encoder's tile grids and latent shapes for every registered model, real
  encodes, the memory estimate against measurements, Kodak with the shipped
  model (``shared``) and a 6000 x 4000 photo at every quality (``slow``).

Run as a script (``python tests/test_hostile.py fuzz N SEED``) this module is
the fuzz worker the tests start in a subprocess.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # run as a script: the fuzz worker
    sys.path.insert(0, str(TESTS))

from codec_helpers import TINY_MODELS, one_thread, photo, tiny_model  # noqa: F401

from licodec.codec.container import (
    METRICS,
    AlphaMethod,
    ColourMode,
    Container,
    TileRecord,
    latent_shape_bound,
    parse,
    serialise,
    tile_rects,
)
from licodec.codec.limits import (
    DEFAULT_MAX_MEMORY,
    MAX_INPUT_BYTES,
    UNKNOWN_MEMORY_PER_PIXEL,
    LimitError,
    ModelGeometry,
    check_decode,
    check_header,
    max_symbols,
    memory_estimate,
    min_symbol_cost,
    parse_size,
)
from licodec.codec.tiling import DEFAULT_TILE_SIZE, check_tile_size, plan_tiles
from licodec.errors import LicodecError
from licodec.models import get_spec, list_models

RSS_LIMIT = 1.5 * (1 << 30)
TIME_LIMIT = 2.0
GiB = 1 << 30


def _stream(n: int, fill: int = 0) -> bytes:
    """``n`` bytes that pass the stream-shape check of either coder (the rANS one wants a
    coder state of 2^31 first), then ``fill``."""
    return (1 << 31).to_bytes(8, "little")[:n] + bytes([fill]) * (n - 8)


def _container(
    model_id: str,
    digest: bytes,
    width: int,
    height: int,
    tile_size: tuple[int, int] | None,
    tiles: list[TileRecord],
    **kw: Any,
) -> Container:
    return Container(
        model_id=model_id,
        weights_digest=digest,
        width=width,
        height=height,
        colour=kw.pop("colour", ColourMode.RGB),
        tiles=tiles,
        check_crc=0,
        tile_size=tile_size,
        portable=True,
        **kw,
    )


# -- the three reported cases, in a fresh process -----------------------------------------

# Runs each case after the imports (so the time is the refusal's own) and reports the
# return code, the time, stderr, and the process's peak RSS so far.
_CASES_SCRIPT = r"""
import contextlib, io, json, os, resource, sys, threading, time
import torch  # noqa: F401  (imported before timing: decoding imports it)
import licodec.codec.api, licodec.cli.compress, licodec.cli.decompress, licodec.cli.info
import licodec.models  # registering the architectures: library import time, not the refusal
from licodec.cli.main import main
from licodec.codec.api import Codec
from licodec.codec.container import parse
from licodec.errors import LicodecError
results = []
for case in json.loads(sys.argv[1]):
    if "preloaded" in case:  # the API with the file's model already loaded
        data = open(case["preloaded"], "rb").read()
        codec = Codec()
        codec._decoder_for(parse(data))
        t0 = time.perf_counter()
        try:
            codec.decode(data)
            rc, msg = 0, ""
        except LicodecError as exc:
            rc, msg = exc.exit_code, f"licodec: error: {exc}"
        results.append({"name": case["name"], "rc": rc, "seconds": time.perf_counter() - t0,
                        "stderr": msg, "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024})
        continue
    stdin = sys.stdin
    if case.get("stdin") == "zero":
        sys.stdin = io.TextIOWrapper(open("/dev/zero", "rb"))
    elif case.get("stdin") == "pipe":  # an endless writer behind a pipe
        r, w = os.pipe()
        def feed(fd=w):
            block = b"\x89L" * (1 << 15)
            try:
                while True:
                    os.write(fd, block)
            except OSError:
                pass
        threading.Thread(target=feed, daemon=True).start()
        sys.stdin = io.TextIOWrapper(os.fdopen(r, "rb"))
    err = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(case["argv"])
    seconds = time.perf_counter() - t0
    if case.get("stdin"):
        sys.stdin.close()
        sys.stdin = stdin
    results.append({"name": case["name"], "rc": rc, "seconds": seconds, "stderr": err.getvalue(),
                    "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024})
print(json.dumps(results))
"""


def _run_cases(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-c", _CASES_SCRIPT, json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _shipped() -> tuple[str, bytes]:
    from licodec.zoo.pretrained import default_entry
    from licodec.zoo.weights import read_config

    entry = default_entry()
    return entry.arch, bytes.fromhex(str(read_config(entry.path)["digest"]))


def _hostile_files(d: Path) -> dict[str, tuple[Path, str]]:
    """The crafted files of the issue (built with the container writer), with the message
    each must be refused with."""
    arch, digest = _shipped()
    big = 4096
    files: dict[str, tuple[bytes, str]] = {}
    # Decompression bomb: one 4096 x 4096 tile with the largest z shape the format
    # allows, a 64-byte y stream and a 16-byte z stream (about 100 bytes).
    bz = latent_shape_bound(big, big)
    files["bomb: largest z shape"] = (
        serialise(
            _container(arch, digest, big, big, None, [TileRecord(bz, _stream(16), _stream(64))])
        ),
        "latent shape 272x272 does not fit its 4096x4096 pixels",
    )
    # ... with the model's own z shape: 8.4 M y symbols cannot fit in 64 bytes
    files["bomb: exact z shape"] = (
        serialise(
            _container(
                arch, digest, big, big, None, [TileRecord((64, 64), _stream(16), _stream(64))]
            )
        ),
        "64-byte y stream cannot code 8388608 symbols",
    )
    # ... with streams long enough for that bound: the memory estimate refuses it
    files["bomb: memory"] = (
        serialise(
            _container(
                arch, digest, big, big, None, [TileRecord((64, 64), _stream(1 << 16), _stream(80))]
            )
        ),
        "decoding needs about .* more than the limit of 1 GiB",
    )
    # Work amplification: 8 x 8 (and 32 x 32) pixels as tiles of 1 x 1
    for side in (8, 32):
        n = side * side
        files[f"amplification: {side}x{side} as 1x1 tiles"] = (
            serialise(
                _container(
                    arch,
                    digest,
                    side,
                    side,
                    (1, 1),
                    [TileRecord((1, 1), _stream(16), _stream(40)) for _ in range(n)],
                )
            ),
            f"{n} tiles for {side}x{side} pixels: the encoder writes at most 1",
        )
    # Tile steps that are no multiple of the pad multiple (two tiles of 65 -> 128 padded)
    files["amplification: 65-pixel tile steps"] = (
        serialise(
            _container(
                arch,
                digest,
                130,
                8,
                (65, 8),
                [TileRecord((2, 1), _stream(16), _stream(44)) for _ in range(2)],
            )
        ),
        "tile width 65 is not a multiple of wacnn-lite's pad multiple 64",
    )
    out = {}
    for name, (data, msg) in files.items():
        p = d / (name.replace(" ", "_").replace(":", "").replace("/", "") + ".lic")
        p.write_bytes(data)
        out[name] = (p, msg)
    return out


def test_the_three_reported_attacks_are_refused_quickly_in_little_memory(
    tmp_path: Path,
) -> None:
    import re

    files = _hostile_files(tmp_path)
    assert len(files["amplification: 8x8 as 1x1 tiles"][0].read_bytes()) < 4000
    assert len(files["bomb: largest z shape"][0].read_bytes()) < 130
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cases: list[dict[str, Any]] = []
    expect: dict[str, tuple[int, str, Path | None]] = {}
    for name, (path, msg) in files.items():
        out = tmp_path / (path.stem + ".png")
        argv = ["decompress", str(path), "-o", str(out), "--threads", "1"]
        if name == "bomb: memory":
            argv += ["--max-memory", "1G"]
        if name == "bomb: exact z shape":  # refused once the weights' tables are known
            cases.append({"name": name + " (API, model loaded)", "preloaded": str(path)})
            expect[name + " (API, model loaded)"] = (4, msg, None)
        cases.append({"name": name, "argv": argv})
        expect[name] = (4, msg, out)
    reads = {
        "read: info /dev/zero": (["info", "/dev/zero"], None, "is a character device"),
        "read: compress /dev/zero": (
            ["compress", "/dev/zero", "-o", str(tmp_path / "z.lic")],
            None,
            "is a character device",
        ),
        "read: decompress /dev/zero": (
            ["decompress", "/dev/zero", "-o", str(tmp_path / "z.png")],
            None,
            "is a character device",
        ),
        "read: info FIFO": (["info", str(fifo)], None, "is a FIFO"),
        "read: compress FIFO": (
            ["compress", str(fifo), "-o", str(tmp_path / "f.lic")],
            None,
            "is a FIFO",
        ),
        "read: info - < /dev/zero": (["info", "-"], "zero", "larger than the limit of 256 MiB"),
        "read: compress - < /dev/zero": (
            ["compress", "-", "-o", str(tmp_path / "s.lic"), "--threads", "1"],
            "zero",
            "larger than the limit",
        ),
        "read: decompress - < endless pipe": (
            ["decompress", "-", "-o", str(tmp_path / "p.png")],
            "pipe",
            "larger than the limit of 256 MiB",
        ),
        "read: info - < endless pipe, --max-input 1M": (
            ["info", "-", "--max-input", "1M"],
            "pipe",
            "limit of 1 MiB",
        ),
        "read: info DIR": (["info", str(tmp_path)], None, "is a directory"),
    }
    for name, (argv, stdin, msg) in reads.items():
        cases.append({"name": name, "argv": argv, "stdin": stdin})
        out = Path(argv[argv.index("-o") + 1]) if "-o" in argv else None
        expect[name] = (3, msg, out)
    results = _run_cases(cases)
    print()
    for r in results:
        print(
            f"  {r['name']:48} exit {r['rc']}  {r['seconds']:6.3f} s  "
            f"peak RSS {r['maxrss'] / 2**20:6.0f} MiB  {r['stderr'].strip()[:90]}"
        )
    for r in results:
        code, msg, out = expect[r["name"]]
        lines = r["stderr"].strip().splitlines()
        assert r["rc"] == code, r
        assert len(lines) == 1 and lines[0].startswith("licodec: error: "), r
        assert re.search(msg, lines[0]), (msg, lines[0])
        if r["name"] != "bomb: exact z shape":  # its CLI time includes loading the weights
            assert r["seconds"] < TIME_LIMIT, r
        assert out is None or not out.exists()
    assert max(r["maxrss"] for r in results) < RSS_LIMIT


def test_a_stream_that_would_make_the_rans_decoder_read_past_its_end_fails_cleanly(
    tmp_path: Path,
) -> None:
    """A 300 kB y stream of 0xFF bytes behind a valid coder state: without the zero padding
    CompressAI's decoder reads megabytes past the buffer (a segfault); with it, a clean
    checksum error."""
    from codec_helpers import weights_file

    from licodec.codec.api import Codec

    w = weights_file(tmp_path, "wacnn-tiny")
    c = parse(Codec(weights=w).compress(photo(64, 64)))
    c.tiles[0] = TileRecord((16, 16), _stream(1024), _stream(300_000, 0xFF))
    c.width = c.height = 1024
    (tmp_path / "ff.lic").write_bytes(serialise(c))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "licodec",
            "decompress",
            str(tmp_path / "ff.lic"),
            "-o",
            str(tmp_path / "ff.png"),
            "--weights",
            str(w),
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode in (4, 5), (proc.returncode, proc.stderr[-2000:])
    assert proc.stderr.count("\n") == 1 and "licodec: error:" in proc.stderr
    assert not (tmp_path / "ff.png").exists()


# -- limits, one by one ---------------------------------------------------------------------


def _geometry(name: str) -> ModelGeometry:
    from licodec.codec.api import LoadedModel, _geometry

    m = tiny_model(name)
    return _geometry(LoadedModel(m, name, b"\0" * 8))


def test_each_limit_refuses_with_its_message() -> None:
    geo = _geometry("wacnn-tiny")
    ok = _container(
        "wacnn-tiny",
        bytes(8),
        150,
        70,
        (64, 64),
        [
            TileRecord(geo.z_shape(h, w), _stream(16), _stream(8))
            for _, _, w, h in tile_rects(150, 70, (64, 64))
        ],
    )
    check_header(ok)
    assert check_decode(ok, geo) > 0

    def refused(c: Container, msg: str, **kw: Any) -> None:
        with pytest.raises(LimitError, match=msg):
            check_header(c)
            check_decode(c, geo, **kw)

    bad = parse(serialise(ok))
    assert bad.coder == "range"
    bad.tiles[1] = TileRecord((1, 1), _stream(16), _stream(10))
    refused(bad, "tile 1 y stream is 10 bytes: the entropy coder writes whole 4-byte words")
    bad.tiles[1] = TileRecord((1, 1), b"", _stream(8))
    refused(bad, "tile 1 z stream is 0 bytes: .* at least 4 bytes")
    bad.tiles[1] = TileRecord((2, 1), _stream(16), _stream(8))
    refused(bad, "tile 1: latent shape 2x1 does not fit its 64x64 pixels")
    # the rANS streams of formats 1-3 are at least two words and start with a state
    old = parse(serialise(ok))
    old.version = 3
    check_header(old)
    old.tiles[1] = TileRecord((1, 1), _stream(16)[:4], _stream(8))
    refused(old, "tile 1 z stream is 4 bytes: .* at least 8 bytes")
    old.tiles[1] = TileRecord((1, 1), b"\xff" * 16, _stream(8))
    refused(old, "tile 1 z stream does not start with an entropy coder state")
    old.tiles[1] = TileRecord((1, 1), bytes(16), _stream(8))
    refused(old, "does not start with an entropy coder state")
    # symbols per byte: a 64 x 64 tile of wacnn-tiny codes 24 * 16 y symbols
    assert geo.y_max_freq == 65533
    cost = min_symbol_cost(geo.y_max_freq, "range")
    assert 6.60e-5 < cost < 6.61e-5  # -log2(65533 / 2^16)
    assert 484_000 < max_symbols(4, cost, "range") < 485_000  # 121,000 symbols per byte
    rans_cost = min_symbol_cost(geo.y_max_freq, "rans")
    assert 6.6e-5 < rans_cost < 6.61e-5
    assert 969_000 < max_symbols(8, rans_cost, "rans") < 970_000  # 121,000 symbols per byte
    big = _container(
        "wacnn-tiny", bytes(8), 4096, 4096, None, [TileRecord((64, 64), _stream(16), _stream(4))]
    )
    refused(big, "a 4-byte y stream cannot code 1572864 symbols")
    big.version = 3
    big.tiles[0] = TileRecord((64, 64), _stream(16), _stream(8))
    refused(big, "a 8-byte y stream cannot code 1572864 symbols")
    big.version = 4
    big.tiles[0] = TileRecord((64, 64), _stream(8192), _stream(16))
    check_decode(big, geo)
    refused(
        big,
        r"needs about .* more than the limit of 100 MiB \(raise it with --max-memory\)",
        max_memory=100 << 20,
    )


def test_memory_estimate_grows_with_the_tile_and_covers_unknown_models() -> None:
    geo = _geometry("wacnn-tiny")
    small = _container(
        "wacnn-tiny", bytes(8), 64, 64, None, [TileRecord((1, 1), _stream(16), _stream(8))]
    )
    large = _container(
        "wacnn-tiny", bytes(8), 1024, 1024, None, [TileRecord((16, 16), _stream(16), _stream(8))]
    )
    grown = memory_estimate(large, geo) - memory_estimate(small, geo)
    assert geo.memory_per_pixel == get_spec("wacnn-tiny").memory_per_pixel == 160
    assert grown >= geo.memory_per_pixel * (1024 * 1024 - 64 * 64)
    unknown = ModelGeometry("some-new-model", 64, 64, 24, 16, 3, 65533, 40000)
    measured = [get_spec(n).memory_per_pixel or 0 for n in list_models()]
    assert unknown.memory_per_pixel == UNKNOWN_MEMORY_PER_PIXEL > max(measured)


def test_every_registered_model_has_its_decode_memory_measured() -> None:
    assert [n for n in list_models() if not get_spec(n).memory_per_pixel] == []


def test_sizes_and_tile_size_checks() -> None:
    assert parse_size("4G") == 4 << 30 and parse_size("512MiB") == 512 << 20
    assert parse_size("1.5k") == 1536 and parse_size("100") == 100
    for bad in ("", "G", "-1M", "4X", "0"):
        with pytest.raises(ValueError):
            parse_size(bad)
    check_tile_size(64, 64, "wacnn-lite")
    with pytest.raises(LicodecError, match="below tcm-lite's padding multiple") as info:
        check_tile_size(100, 128, "tcm-lite")
    assert info.value.exit_code == 2


def test_compress_refuses_a_tile_size_below_the_pad_multiple(tmp_path: Path) -> None:
    from codec_helpers import weights_file
    from PIL import Image

    from licodec.cli.main import main

    Image.fromarray(photo(16, 16)).save(tmp_path / "a.png")
    w = weights_file(tmp_path, "tcm-tiny")  # pad multiple 128
    with pytest.raises(SystemExit) as info:
        main(["compress", str(tmp_path / "a.png"), "--weights", str(w), "--tile-size", "32"])
    assert info.value.code == 2
    rc = main(
        ["compress", str(tmp_path / "a.png"), "--weights", str(w), "--tile-size", "64", "--quiet"]
    )
    assert rc == 2 and not (tmp_path / "a.lic").exists()
    assert (
        main(
            [
                "compress",
                str(tmp_path / "a.png"),
                "--weights",
                str(w),
                "--tile-size",
                "128",
                "--quiet",
            ]
        )
        == 0
    )


def test_the_api_refuses_a_tile_size_below_the_pad_multiple(tmp_path: Path) -> None:
    from codec_helpers import weights_file
    from PIL import Image

    from licodec import Codec
    from licodec.codec.tiling import TileSizeError

    img = Image.fromarray(photo(16, 16))
    w = weights_file(tmp_path, "tcm-tiny")  # pad multiple 128
    with pytest.raises(TileSizeError, match="tile size 64 is below tcm-tiny's padding multiple"):
        Codec(weights=w, tile_size=64).encode(img)
    assert Codec(weights=w, tile_size=128).encode(img).data


def test_bounded_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from licodec.cli.support import expand_inputs
    from licodec.codec.files import read_bytes
    from licodec.errors import InputError

    p = tmp_path / "x.bin"
    p.write_bytes(b"a" * 5000)
    assert read_bytes(str(p)) == b"a" * 5000
    with pytest.raises(InputError, match="larger than the limit of 4.9 KiB"):
        read_bytes(str(p), 4999)
    assert read_bytes(str(p), 5000) == b"a" * 5000
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"b" * 3_000_000)))
    with pytest.raises(InputError, match="<stdin>: input is larger than the limit of 2 MiB"):
        read_bytes("-", 2 << 20)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"b" * 3_000_000)))
    assert len(read_bytes("-")) == 3_000_000
    os.mkfifo(tmp_path / "f")
    for bad, msg in (
        (tmp_path, "is a directory"),
        (tmp_path / "f", "is a FIFO"),
        ("/dev/null", "is a character device"),
        (tmp_path / "nope", "no such file"),
    ):
        with pytest.raises(InputError, match=msg):
            read_bytes(str(bad))
    with pytest.raises(InputError, match="is a FIFO"):
        expand_inputs([str(tmp_path / "f")], {".lic"})
    assert MAX_INPUT_BYTES == 256 << 20


# -- no legitimate file is refused ------------------------------------------------------------

#: Geometry of the full-size models (building them takes a while; the slow test
#: checks this table against the built models).
_FULL_SIZE = {  # pad multiple, M, z channels, slices
    "wacnn": (64, 320, 192, 10),
    "stf": (64, 384, 192, 12),
    "tcm-s": (128, 320, 192, 5),
    "tcm-m": (128, 320, 192, 5),
    "tcm-l": (128, 320, 192, 5),
    "elic": (64, 320, 192, 3),  # slices: y over its largest coding step (192 ch., half)
}
# The y tables are the Gaussian tables of the shared scale table (its narrowest,
# sigma = 0.11, gives 65533 of 65536); the z tables are learned: assume the worst.
_Y_MAX_FREQ = 65533
_Z_MAX_FREQ = 65535


def _all_geometries() -> dict[str, ModelGeometry]:
    from licodec.models import list_models

    out = {}
    for name in list_models():
        if name in _FULL_SIZE:
            p, m, cz, slices = _FULL_SIZE[name]
            out[name] = ModelGeometry(
                name,
                p,
                64,
                m,
                cz,
                slices,
                _Y_MAX_FREQ,
                _Z_MAX_FREQ,
                get_spec(name).memory_per_pixel or 0,
            )
        else:
            from licodec.codec.api import LoadedModel, _geometry

            model = tiny_model(name) if name in TINY_MODELS else _lite(name)
            g = _geometry(LoadedModel(model, name, bytes(8)))
            assert g.y_max_freq == _Y_MAX_FREQ
            out[name] = ModelGeometry(
                name,
                g.pad_multiple,
                g.z_stride,
                g.y_channels,
                g.z_channels,
                g.num_slices,
                _Y_MAX_FREQ,
                _Z_MAX_FREQ,
                g.memory_per_pixel,
            )
    return out


def _lite(name: str) -> Any:
    import torch

    from licodec.models import create_model

    torch.manual_seed(0)
    m = create_model(name).eval()
    m.update(force=True)
    return m


def _legit_container(
    geo: ModelGeometry, width: int, height: int, tile: int, quality: int
) -> Container:
    """What the encoder writes for this size and tile size, with the shortest streams the
    coder could produce (the symbol bound is exact for real streams)."""
    grid = plan_tiles(width, height, tile, geo.pad_multiple)
    tiles = []
    for _, _, w, h in tile_rects(width, height, grid):
        z = geo.z_shape(h, w)
        ny, nz = geo.symbols(z)
        # (the range coder's information bound, without the slack the limit allows)
        lens = [
            max(4, 4 * math.ceil(n * min_symbol_cost(f) / 32))
            for n, f in ((nz, geo.z_max_freq), (ny, geo.y_max_freq))
        ]
        tiles.append(TileRecord(z, _stream(lens[0]), _stream(lens[1])))
    return _container(geo.arch, bytes(8), width, height, grid, tiles, quality=quality)


_SIZES = [(768, 512), (512, 768), (6000, 4000), (4000, 6000), (1, 1), (65, 4097)]


def test_no_legitimate_tile_grid_is_refused_arithmetically() -> None:
    """Every registered model, quality 1..6, Kodak's sizes and 6000 x 4000 at compress's
    default tile size (and smaller ones): the header and model limits all pass with the
    default memory budget. Larger tiles (up to 4096) pass every limit but the memory
    budget, which some models exceed: they are printed (they need --max-memory)."""
    over_budget: dict[str, int] = {}
    for name, geo in _all_geometries().items():
        for width, height in _SIZES:
            for tile in (DEFAULT_TILE_SIZE, 64, 128, 256, 1000, 2048, 4096):
                if tile < geo.pad_multiple:
                    continue
                for quality in range(1, 7) if tile == DEFAULT_TILE_SIZE else (4,):
                    c = parse(serialise(_legit_container(geo, width, height, tile, quality)))
                    check_header(c)
                    est = memory_estimate(c, geo)
                    if tile <= DEFAULT_TILE_SIZE or est <= DEFAULT_MAX_MEMORY:
                        check_decode(c, geo)
                    else:
                        over_budget[name] = min(tile, over_budget.get(name, tile))
                        check_decode(c, geo, max_memory=est)
    print("\n  smallest tile size over the default memory budget:", over_budget)
    assert "wacnn-lite" not in over_budget  # the shipped model decodes its largest tiles
    assert set(over_budget) <= set(_FULL_SIZE) | {"stf-lite", "tcm-lite"}


def test_real_encodes_pass_every_limit() -> None:
    """Actual files of the tiny models: shapes are the geometry's, streams are whole words,
    range-coded, and the symbol bound holds with room to spare."""
    from licodec.codec.api import Codec

    for name in TINY_MODELS:
        model = tiny_model(name)
        geo = _geometry(name)
        codec = Codec(model, tile_size=128)
        for h, w in ((1, 1), (8, 8), (64, 64), (65, 130), (200, 129)):
            c = parse(codec.compress(photo(h, w, seed=h + w)))
            check_header(c)
            check_decode(c, geo)
            for (_, _, tw, th), t in zip(tile_rects(c.width, c.height, c.tile_size), c.tiles):
                assert t.z_shape == geo.z_shape(th, tw)
                ny, nz = geo.symbols(t.z_shape)
                # without the flush's slack: real streams carry the information bound
                assert ny * min_symbol_cost(geo.y_max_freq) <= 8 * len(t.y_stream)
                assert nz * min_symbol_cost(geo.z_max_freq) <= 8 * len(t.z_stream)


_MEASURE_SCRIPT = r"""
import json, sys, torch
torch.set_num_threads(1)
from licodec.codec.api import Codec, LoadedModel, _geometry
from licodec.codec.container import parse
from licodec.codec.limits import memory_estimate
from licodec.models import create_model
name, big, small = sys.argv[1:4]
torch.manual_seed(0)
m = create_model(name).eval()
m.update(force=True)
codec = Codec(m)
codec.decode(open(small, "rb").read())  # the float64 copy, warm caches
data = open(big, "rb").read()
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM)
base = status("VmRSS:")
codec.decode(data)
work = status("VmHWM:") - base
est = memory_estimate(parse(data), _geometry(LoadedModel(m, name, b"")))
print(json.dumps({"model": name, "measured": work, "estimate": est}))
"""


def _measure(tmp: Path, name: str, size: int) -> dict[str, Any]:
    """Decode working memory of one ``size`` x ``size`` tile, in a fresh process (what the
    encoder allocated would otherwise be reused and hide part of it)."""
    import torch

    from licodec.codec.api import Codec
    from licodec.models import create_model

    if name in TINY_MODELS:
        model = tiny_model(name)
    else:
        torch.manual_seed(0)
        model = create_model(name).eval()
        model.update(force=True)
    codec = Codec(model, quality=4 if model.num_rates else None, tile_size=4096)
    big, small = tmp / f"{name}-{size}.lic", tmp / f"{name}-small.lic"
    big.write_bytes(codec.compress(photo(size, size, seed=1)))
    small.write_bytes(codec.compress(photo(64, 64, seed=2)))
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE_SCRIPT, name, str(big), str(small)],
        capture_output=True,
        text=True,
        timeout=3000,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"\n  {name} {size}x{size}: measured {r['measured'] / 2**20:.0f} MiB, "
        f"estimate {r['estimate'] / 2**20:.0f} MiB",
        end="",
    )
    return r


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_memory_estimate_is_an_upper_bound_for_a_tiny_model(tmp_path: Path) -> None:
    r = _measure(tmp_path, "stf-tiny", 512)
    assert r["measured"] <= r["estimate"] <= 4 * r["measured"] + (64 << 20), r


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_memory_estimate_is_an_upper_bound_for_every_model(tmp_path: Path) -> None:
    from licodec.models import list_models

    for name in list_models():
        r = _measure(tmp_path, name, 512 if name in _FULL_SIZE else 1024)
        assert r["measured"] <= r["estimate"] <= 4 * r["measured"] + (64 << 20), r


@pytest.mark.slow
def test_full_size_geometry_table_matches_the_models() -> None:
    import torch

    from licodec.codec.api import LoadedModel, _geometry
    from licodec.models import create_model

    for name, (p, m_ch, cz, slices) in _FULL_SIZE.items():
        torch.manual_seed(0)
        model = create_model(name).eval()
        model.update(force=True)
        g = _geometry(LoadedModel(model, name, bytes(8)))
        assert (g.pad_multiple, g.z_stride, g.y_channels, g.z_channels, g.num_slices) == (
            p,
            64,
            m_ch,
            cz,
            slices,
        )
        assert g.y_max_freq == _Y_MAX_FREQ
        x = torch.rand(1, 3, 70, 130)
        with torch.inference_mode():
            assert tuple(model.compress(x)["shape"]) == g.z_shape(70, 130)
        del model


@pytest.mark.shared
def test_kodak_decodes_with_the_shipped_model(shared: Path) -> None:
    from PIL import Image

    from licodec.codec.api import Codec

    kodak = sorted((shared / "data" / "kodak").glob("*.png"))
    if not kodak:
        pytest.skip("no Kodak images under shared/data/kodak")
    codec = Codec()
    for path in (kodak[0], kodak[3], kodak[-1]):
        img = Image.open(path)
        result = codec.encode(path, keep_reconstruction=True)
        c = parse(result.data)
        lm = codec._decoder_for(c)
        from licodec.codec.api import _geometry

        assert check_decode(c, _geometry(lm)) < DEFAULT_MAX_MEMORY
        out = codec.decode(result.data)
        assert out.size == img.size
        assert result.reconstruction is not None
        assert np.array_equal(np.asarray(out), np.asarray(result.reconstruction))


@pytest.mark.slow
def test_a_6000x4000_photo_decodes_at_every_quality() -> None:
    from licodec.codec.api import Codec

    rgb = photo(4000, 6000, seed=11)
    rates = Codec().load().num_rates
    for q in range(1, (rates or 1) + 1):
        codec = Codec(None, q if rates else None)
        result = codec.encode(rgb, keep_reconstruction=True)
        assert result.tiles == 24
        out = codec.decode(result.data)
        assert result.reconstruction is not None
        assert np.array_equal(np.asarray(out), np.asarray(result.reconstruction)), q


# -- the fuzzer ---------------------------------------------------------------------------------


def _bases() -> list[tuple[str, str, bytes]]:
    """(label, model, file) of the fuzzed files: RGB, L, RGBA, ICC + metadata, tiled, TCM."""
    from licodec.codec.api import Codec

    icc = bytes(range(256)) * 3  # any bytes: the container carries the profile as is
    specs: list[tuple[str, str, Any, dict[str, Any]]] = [
        ("RGB", "wacnn-tiny", photo(8, 8, seed=1), {}),
        ("L", "wacnn-tiny", photo(12, 10, seed=2)[..., 0], {}),
        (
            "RGBA",
            "stf-tiny",
            np.dstack([photo(9, 7, seed=3), np.arange(63, dtype=np.uint8).reshape(9, 7) * 4]),
            {},
        ),
        (
            "ICC+metadata",
            "wacnn-tiny",
            photo(8, 8, seed=4),
            {
                "icc_profile": icc,
                "exif": b"MM\x00*\x00\x00\x00\x08\x00\x00",
                "xmp": b"<x:xmpmeta/>",
                "text": (("Title", "fuzz"),),
            },
        ),
        ("tiled", "wacnn-tiny", photo(8, 72, seed=5), {"tile": 64}),
        ("TCM", "tcm-tiny", photo(6, 5, seed=6), {}),
    ]
    out = []
    for label, name, pixels, extra in specs:
        codec = Codec(tiny_model(name), tile_size=int(extra.pop("tile", 1024)))
        c = parse(codec.compress(pixels, keep_metadata="none"))
        for k, v in extra.items():
            setattr(c, k, v)
        data = serialise(c)
        if label == "tiled":
            assert len(c.tiles) == 2
        out.append((label, name, data))
    return out


_FIELD_EDITS = (
    "quality",
    "metric",
    "portable",
    "colour",
    "width",
    "height",
    "tile_size",
    "z_shape",
    "z_stream",
    "y_stream",
    "check_crc",
    "model_id",
    "digest",
    "icc",
    "exif",
    "xmp",
    "text",
    "srgb",
    "alpha",
)


def _edit_field(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    c = parse(data)
    field = rng.choice(_FIELD_EDITS)
    i = rng.randrange(len(c.tiles))
    t = c.tiles[i]
    if field == "quality":
        c.quality = rng.randrange(32)
    elif field == "metric":
        c.metric = rng.choice(METRICS)
    elif field == "portable":
        c.portable = not c.portable
    elif field == "colour":
        c.colour = rng.choice([m for m in ColourMode if m.has_alpha == c.colour.has_alpha])
    elif field in ("width", "height"):
        v = getattr(c, field)
        setattr(c, field, max(1, rng.choice([v + 1, v - 1, v * 2, v + 64, rng.randrange(1, 5000)])))
    elif field == "tile_size":
        c.tile_size = rng.choice(
            [
                None,
                (64, 64),
                (1, 1),
                (64, c.height),
                (c.width, 1),
                (rng.randint(1, 200), rng.randint(1, 200)),
            ]
        )
    elif field == "z_shape":
        zh, zw = t.z_shape
        c.tiles[i] = TileRecord(
            (max(1, zh + rng.randint(-1, 3)), max(1, zw + rng.randint(-1, 3))),
            t.z_stream,
            t.y_stream,
        )
    elif field in ("z_stream", "y_stream"):
        s = getattr(t, field)
        op = rng.randrange(6)
        if op == 0:
            s = s[: rng.randint(1, len(s))]
        elif op == 1:
            s = s + rng.randbytes(rng.choice([1, 4, 8, 64]))
        elif op == 2:
            s = rng.randbytes(len(s))
        elif op == 3:
            s = s[:8] + b"\xff" * rng.choice([4, 64, 4096])
        elif op == 4:
            b = bytearray(s)
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            s = bytes(b)
        else:
            s = (
                c.tiles[(i + 1) % len(c.tiles)].z_stream
                if field == "y_stream"
                else c.tiles[(i + 1) % len(c.tiles)].y_stream
            )
        c.tiles[i] = TileRecord(
            t.z_shape,
            s if field == "z_stream" else t.z_stream,
            s if field == "y_stream" else t.y_stream,
        )
    elif field == "check_crc":
        c.check_crc ^= 1 << rng.randrange(32)
    elif field == "model_id":
        c.model_id = rng.choice([*TINY_MODELS, "wacnn-lite", "stf", "no-such-model"])
    elif field == "digest":
        c.weights_digest = rng.randbytes(8)
    elif field == "icc":
        c.icc_profile = rng.choice([None, b"x", rng.randbytes(rng.randint(1, 300))])
        c.srgb = False
    elif field == "exif":
        c.exif = rng.choice([None, b"II*\x00" + rng.randbytes(rng.randint(0, 40))])
    elif field == "xmp":
        c.xmp = rng.choice([None, b"<x/>", rng.randbytes(10)])
    elif field == "text":
        c.text = rng.choice([(), (("k", "v"),), (("Title", "\u0142\u00f3d\u017a"), ("", ""))])
    elif field == "srgb":
        c.srgb = not c.srgb
        if c.srgb:
            c.icc_profile = None
    elif field == "alpha":
        if c.colour.has_alpha:
            alpha = np.full((c.height, c.width), rng.randrange(256), dtype=np.uint8)
            c.alpha_method, c.alpha_data = rng.choice(
                [
                    (AlphaMethod.CONSTANT, bytes([rng.randrange(256)])),
                    (AlphaMethod.ZLIB, zlib.compress(alpha.tobytes())),
                    (AlphaMethod.ZLIB, zlib.compress(bytes(rng.randrange(1, 100)))),
                    (AlphaMethod.PNG, rng.randbytes(20)),
                ]
            )
        else:
            c.colour = ColourMode.RGBA if c.colour == ColourMode.RGB else ColourMode.LA
            c.alpha_method, c.alpha_data = AlphaMethod.CONSTANT, b"\x80"
    try:
        return f"field {field}", serialise(c)
    except ValueError:  # the writer refuses what it cannot lay out: mutate the bytes instead
        return _raw(rng, data)


def _raw(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    c = parse(data)
    head = c.stats["header_bytes"] + c.stats["tile_table_bytes"]
    b = bytearray(data)

    def pos() -> int:  # mostly the header and tile table, where the limits live
        return rng.randrange(head) if rng.random() < 0.85 else rng.randrange(len(b))

    kind = rng.choice(
        ("bit flips", "byte set", "truncation", "insertion", "deletion", "varint run")
    )
    if kind == "bit flips":
        for _ in range(rng.randint(1, 4)):
            b[pos()] ^= 1 << rng.randrange(8)
    elif kind == "byte set":
        b[pos()] = rng.choice([0x00, 0x01, 0x7F, 0x80, 0xFF, rng.randrange(256)])
    elif kind == "truncation":
        b = b[: rng.randrange(len(b))]
    elif kind == "insertion":
        i = pos()
        b[i:i] = rng.randbytes(rng.randint(1, 12))
    elif kind == "deletion":
        i = pos()
        del b[i : i + rng.randint(1, 8)]
    else:
        i = pos()
        b[i : i + 6] = b"\xff" * 6
    if len(b) >= 4 and rng.random() < 0.9:  # recompute the CRC: reach the checks behind it
        b[-4:] = zlib.crc32(bytes(b[:-4])).to_bytes(4, "little")
    return kind, bytes(b)


def _expected_pixels(model: Any, c: Container) -> np.ndarray:
    """The colour planes of ``c`` decoded tile by tile straight through the model: each
    tile's full (padded) reconstruction cropped to the tile's declared size."""
    import torch

    from licodec.codec.api import _to_pixels

    gray = c.colour.channels == 1
    out = np.zeros((c.height, c.width) if gray else (c.height, c.width, 3), dtype=np.uint8)
    with torch.inference_mode():
        for (x, y, w, h), t in zip(tile_rects(c.width, c.height, c.tile_size), c.tiles):
            full = model.decompress(
                [[t.y_stream], [t.z_stream]], t.z_shape, None, portable=c.portable, coder=c.coder
            )["x_hat"]
            crop = model._crop(full, (h, w), model.pads_for((h, w)))
            out[y : y + h, x : x + w] = _to_pixels(crop, c.colour)
    return out


def _colour_planes(a: np.ndarray, colour: ColourMode) -> np.ndarray:
    if colour == ColourMode.RGBA:
        return a[..., :3]
    if colour == ColourMode.LA:
        return a[..., 0]
    return a


def _explain(base: Container, ref: Any, c: Container, img: Any, model: Any) -> str | None:
    """Why a mutated file's decode may differ from the original's; None if unexplained."""
    fields = [
        f
        for f in (
            "quality",
            "metric",
            "portable",
            "colour",
            "width",
            "height",
            "tile_size",
            "icc_profile",
            "srgb",
            "exif",
            "xmp",
            "text",
            "alpha_method",
            "alpha_data",
            "tiles",
        )
        if getattr(base, f) != getattr(c, f)
    ]
    if (base.model_id, base.weights_digest, base.check_crc) != (
        c.model_id,
        c.weights_digest,
        c.check_crc,
    ):
        return None  # such edits cannot decode: the model or the checksum says no
    a = np.asarray(img).astype(np.int16)
    got = _colour_planes(a, c.colour)
    if {"width", "height", "tile_size"} & set(fields):
        # the same latents cropped to other sizes: compare with the model's own crops
        want = _expected_pixels(model, c).astype(np.int16)
        if got.shape != want.shape or np.abs(got - want).max() > 0:
            return None
    else:
        ref_planes = _colour_planes(np.asarray(ref).astype(np.int16), base.colour)
        tol = 1 if "portable" in fields else 0  # float32 vs float64 entropy parameters
        if "tiles" in fields and (
            got.shape != ref_planes.shape or np.abs(got - ref_planes).max() > tol
        ):
            # Other z symbols with the same y symbols and table indexes (all that the
            # decode checksum covers): other means, so another image, which must be what
            # the model makes of these streams.
            want = _expected_pixels(model, c).astype(np.int16)
            if got.shape != want.shape or np.abs(got - want).max() > 0:
                return None
            return "differs in tiles (z stream: other means, same checksummed latents)"
        if got.ndim != ref_planes.ndim:  # RGB <-> L: grey is the mean of the decoded RGB
            rgb, grey = (got, ref_planes) if got.ndim == 3 else (ref_planes, got)
            if np.abs(rgb.mean(axis=2) - grey).max() > 1 + tol:
                return None
        elif got.shape != ref_planes.shape or np.abs(got - ref_planes).max() > tol:
            return None
    if c.colour.has_alpha:
        from licodec.codec.image_io import decode_alpha

        assert c.alpha_method is not None and c.alpha_data is not None
        want_alpha = decode_alpha(c.alpha_method, c.alpha_data, c.width, c.height)
        if not np.array_equal(a[..., -1], want_alpha):
            return None
    info = img.info
    if not c.srgb and (info.get("icc_profile") or None) != (c.icc_profile or None):
        return None
    if (info.get("xmp") or None) != (c.xmp or None):
        return None
    if (info.get("exif") or None) != (b"Exif\x00\x00" + c.exif if c.exif else None):
        return None
    if any(info.get(k) != v for k, v in c.text):
        return None
    return "identical" if not fields else "differs in " + "+".join(fields)


def fuzz(n: int, seed: int) -> dict[str, Any]:
    """Decode ``n`` mutated files; count the outcomes (the worker of the fuzz tests)."""
    import torch

    from licodec.codec.api import Codec

    torch.set_num_threads(1)
    rng = random.Random(seed)
    bases = _bases()
    codecs = {name: Codec(tiny_model(name)) for name in {m for _, m, _ in bases}}
    refs = {label: (parse(data), codecs[name].decode(data)) for label, name, data in bases}
    outcomes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    failures: list[str] = []
    slowest = 0.0
    t_all = time.perf_counter()
    seen: dict[bytes, str] = {}  # the decoder is deterministic: decode each file once
    for k in range(n):
        label, name, data = bases[k % len(bases)]
        kind, mutated = _edit_field(rng, data) if rng.random() < 0.35 else _raw(rng, data)
        kinds[kind] += 1
        key = bytes(mutated)
        if key in seen:
            outcomes[seen[key]] += 1
            continue
        t0 = time.perf_counter()
        try:
            img = codecs[name].decode(mutated)
        except LicodecError as exc:
            text = str(exc)
            if not text or "\n" in text:
                failures.append(f"{label}/{kind}: message not one line: {text!r}")
            seen[key] = f"refused ({type(exc).__name__})"
            outcomes[seen[key]] += 1
            errors[f"{type(exc).__name__}: {' '.join(text.split()[:5])}"] += 1
            continue
        except Exception as exc:  # noqa: BLE001 - the point: nothing else may escape
            failures.append(f"{label}/{kind}: {type(exc).__name__}: {exc}")
            continue
        finally:
            slowest = max(slowest, time.perf_counter() - t0)
        base, ref = refs[label]
        why = _explain(base, ref, parse(mutated), img, codecs[name].load().module)
        if why is None:
            failures.append(f"{label}/{kind}: decoded to an unexplained image")
            seen[key] = "unexplained"
        else:
            seen[key] = f"decoded ({why})"
            outcomes[seen[key]] += 1
    import resource

    return {
        "files": n,
        "seconds": time.perf_counter() - t_all,
        "slowest_file_seconds": slowest,
        "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "outcomes": dict(outcomes.most_common()),
        "mutations": dict(kinds.most_common()),
        "distinct_files": len(seen),
        "distinct_errors": len(errors),
        "top_errors": dict(errors.most_common(25)),
        "failures": failures[:20],
        "n_failures": len(failures),
    }


def _run_fuzz(n: int, seed: int, timeout: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(Path(__file__)), "fuzz", str(n), str(seed)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]  # a crash (signal) fails here
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"\n  {r['files']} files in {r['seconds']:.1f} s, slowest {r['slowest_file_seconds']:.2f}"
        f" s, peak RSS {r['maxrss'] / 2**20:.0f} MiB"
    )
    for k, v in r["outcomes"].items():
        print(f"    {v:7d}  {k}")
    print(
        f"  {r['distinct_files']} distinct files, {r['distinct_errors']} distinct error "
        f"messages; mutations {r['mutations']}"
    )
    assert r["n_failures"] == 0, r["failures"]
    assert sum(r["outcomes"].values()) == n  # every file is a clean error or a decode
    assert r["slowest_file_seconds"] < 30
    assert r["maxrss"] < min(DEFAULT_MAX_MEMORY, RSS_LIMIT)
    return r


def test_fuzz_sample_of_mutated_files() -> None:
    r = _run_fuzz(5000, 18, timeout=600)
    assert r["distinct_errors"] >= 30  # the mutations reach many different checks
    assert any(k.startswith("decoded (differs") for k in r["outcomes"])


@pytest.mark.slow
def test_fuzz_100k_mutated_files() -> None:
    r = _run_fuzz(100_000, 1800, timeout=3 * 3600)
    assert r["distinct_errors"] >= 40


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "fuzz":
        print(json.dumps(fuzz(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        sys.exit(f"usage: {sys.argv[0]} fuzz N SEED")
