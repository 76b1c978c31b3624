"""The encoder's knobs: the continuous 0-100 quality, --size / --bpp, --effort.

What must hold (issue 15): the rate grows strictly with the quality and every
quality decodes to the encoder's reconstruction; a target size lands within 2 %
or fails with a one-line message, exit 7 and no file; refined latents cost
less (R + λD) than the analysis transform's and decode bit for bit; a file at a
trained point is laid out exactly as format 4.
"""

from __future__ import annotations

import argparse
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from codec_helpers import photo
from PIL import Image

from licodec import Codec
from licodec.codec.container import Chunk, parse, serialise
from licodec.codec.quality import (
    EFFORT_MAX,
    code_of,
    nearest_point,
    parse_bpp,
    parse_effort,
    parse_quality,
    parse_size,
    point_code,
    point_of,
    rate_position,
)
from licodec.codec.ratecontrol import search_size
from licodec.errors import EXIT_MODEL, EXIT_TARGET, InputError, ModelError, TargetError

DATA = Path(__file__).parent / "data"


def _pil(h: int, w: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(photo(h, w, seed))


def _decodes_to_reconstruction(res: object) -> None:
    data = res.data  # type: ignore[attr-defined]
    decoded = np.asarray(Codec().decode(data))
    assert np.array_equal(decoded, np.asarray(res.reconstruction))  # type: ignore[attr-defined]


# -- the scale --------------------------------------------------------------------------


def test_six_trained_points_sit_at_multiples_of_20() -> None:
    assert [point_code(i, 6) for i in range(1, 7)] == [0, 2000, 4000, 6000, 8000, 10000]
    assert [point_of(c, 6) for c in (0, 2000, 10000)] == [1, 2, 6]
    assert point_of(2001, 6) is None and point_code(2, 4) is None  # 1/3 is off the grid
    assert [nearest_point(c, 6) for c in (999, 1000, 1001, 9999)] == [1, 1, 2, 6]
    assert rate_position(4000, 6) == 2 and isinstance(rate_position(4000, 6), int)
    assert rate_position(5750, 6) == 2.875
    assert code_of(57.5) == 5750 and code_of(33.333) == 3333
    with pytest.raises(ValueError, match="0..100"):
        code_of(math.nan)


@pytest.mark.parametrize(
    ("text", "value"),
    [("20000", 20000), ("20k", 20000), ("1.5M", 1_500_000), ("20Ki", 20480), ("3 kB", 3000)],
)
def test_sizes_parse_with_units(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parse_quality, "-1", "expected a quality in 0..100, got -1"),
        (parse_quality, "nan", "expected a quality in 0..100, got nan"),
        (parse_quality, "1e9", "expected a quality in 0..100, got 1e9"),
        (parse_quality, "high", "expected a quality in 0..100, got 'high'"),
        (parse_size, "0", "size must be at least 1 byte, got '0'"),
        (parse_size, "-5k", "expected a size such as 20000, 20k or 1.5M, got '-5k'"),
        (parse_size, "20Xi", "expected a size such as 20000, 20k or 1.5M, got '20Xi'"),
        (parse_bpp, "0", "bpp must be in (0, 32], got 0"),
        (parse_bpp, "inf", "bpp must be in (0, 32], got inf"),
        (parse_effort, str(EFFORT_MAX + 1), f"effort must be in 0..{EFFORT_MAX}"),
        (parse_effort, "-1", f"effort must be in 0..{EFFORT_MAX}, got -1"),
    ],
)
def test_bad_knob_values_are_argument_errors(parse: object, text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as exc:
        parse(text)  # type: ignore[operator]
    assert message in str(exc.value)


def test_api_refuses_contradictory_settings() -> None:
    for kwargs, message in [
        ({"q": 50, "quality": 3}, "not both"),
        ({"size": 1000, "bpp": 0.5}, "not both"),
        ({"size": 1000, "q": 50}, "drop the quality"),
        ({"q": -3}, "q must be a number in 0..100"),
        ({"q": math.inf}, "q must be a number in 0..100"),
        ({"size": 0}, "at least 1 byte"),
        ({"effort": EFFORT_MAX + 1}, f"effort must be in 0..{EFFORT_MAX}"),
    ]:
        with pytest.raises(InputError, match=message):
            Codec(**kwargs)  # type: ignore[arg-type]


# -- the search (no model) ----------------------------------------------------------------


def _sizes(code: int) -> int:
    """An exponential-ish size curve with small wiggles, 1000 .. 12000 bytes."""
    return int(1000 * math.exp(code / 10000 * math.log(12)) + 20 * math.sin(code / 37))


@pytest.mark.parametrize("target", [1030, 1500, 3000, 7000, 11800])
def test_search_lands_within_two_percent_in_few_probes(target: int) -> None:
    found = search_size(_sizes, target)
    assert abs(found.size - target) <= 0.02 * target
    assert found.size == _sizes(found.code) and len(found.probes) <= 8


def test_search_names_the_reachable_range() -> None:
    with pytest.raises(TargetError, match=r"below the lowest rate: .* is 1000 bytes \(quality 0\)"):
        search_size(_sizes, 500)
    with pytest.raises(TargetError, match=r"above the highest rate: .* is 12.0 kB \(quality 100\)"):
        search_size(_sizes, 50_000)
    with pytest.raises(TargetError, match="sizes step from"):
        search_size(lambda c: 1000 if c < 5000 else 2000, 1500)


# -- the container ------------------------------------------------------------------------


def test_a_trained_point_costs_no_byte_and_a_rate_between_costs_five() -> None:
    old = (DATA / "wacnn-lite-v4-format4.lic").read_bytes()
    c = parse(old)
    assert (c.version, c.rate_code) == (4, None)
    c.version = 5
    new = serialise(c)
    # Format 5 at a trained point: format 4's bytes but for the version byte (and the CRC).
    assert len(new) == len(old) and new[3:-4] == old[3:-4] and new[2] == 5
    c.rate_code = 5750
    between = serialise(c)
    assert len(between) - len(new) == 5  # flag bit: chunk count 1, type, length, 2-byte varint
    d = parse(between)
    assert (d.rate_code, d.quality, d.tiles) == (5750, c.quality, c.tiles)
    c.exif = b"MM\x00*\x00\x00\x00\x08\x00\x00"
    assert len(serialise(c)) - len(serialise(_without_rate(c))) == 4  # a list exists already


def _without_rate(c: object) -> object:
    import copy

    d = copy.copy(c)
    d.rate_code = None  # type: ignore[attr-defined]
    return d


def test_rate_chunk_is_checked() -> None:
    from test_codec_container import _refresh_crc

    from licodec.errors import FormatError

    c = parse((DATA / "wacnn-lite-v4-format4.lic").read_bytes())
    c.version = 5
    c.rate_code = 300
    data = bytearray(serialise(c))
    at = data.index(bytes([Chunk.RATE]))
    assert data[at + 1 : at + 4] == bytes([2, 0xAC, 0x02])
    v4 = bytearray(data)
    v4[2] = 4
    with pytest.raises(FormatError, match="needs chunk type 134"):
        parse(_refresh_crc(v4))
    big = bytearray(data)
    big[at + 2 : at + 4] = bytes([0x91, 0x4F])  # 10129 > 10000
    with pytest.raises(FormatError, match="rate is out of range"):
        parse(_refresh_crc(big))
    with pytest.raises(ValueError, match="outside 0..10000"):
        c.rate_code = 10001
        serialise(c)


def test_a_format_4_file_still_decodes() -> None:
    # Written by main at ed94089 (format 4) with wacnn-lite v4: photo(48, 64, 7), quality 3.
    data = (DATA / "wacnn-lite-v4-format4.lic").read_bytes()
    decoded = np.asarray(Codec().decompress(data), dtype=int)
    ref = np.asarray(Image.open(DATA / "wacnn-lite-v4-format4.png"), dtype=int)
    assert decoded.shape == ref.shape and np.abs(decoded - ref).max() <= 1
    assert (decoded != ref).mean() < 1e-3


# -- continuous quality on the shipped model ------------------------------------------------


def test_rate_grows_strictly_with_quality_and_every_quality_decodes_exactly() -> None:
    img = _pil(64, 96, 3)
    sizes = []
    for q in (0, 7.5, 10, 20, 25, 33.33, 40, 50, 60, 66.6, 80, 90, 100):
        res = Codec(q=q).encode(img, keep_reconstruction=True)
        c = parse(res.data)
        on_point = q % 20 == 0
        assert (c.rate_code is None) == on_point and res.quality == round(q, 2)
        _decodes_to_reconstruction(res)
        sizes.append(res.stats["payload_bytes"])
    assert all(a < b for a, b in itertools.pairwise(sizes)), sizes


def test_the_old_quality_indices_are_the_points_of_the_scale() -> None:
    img = _pil(48, 64, 1)
    for index, q in ((1, 0), (3, 40), (6, 100)):
        assert Codec(quality=index).compress(img) == Codec(q=q).compress(img)


def test_interpolated_gains_are_exact_at_the_points_and_between_them() -> None:
    from licodec.zoo.load import load_model

    model = load_model()
    g2 = model._gains(2, 1)
    assert all(torch.equal(a, b) for a, b in zip(model._gains(2.0, 1), g2))
    mid = model._gains(2.5, 1)
    want = (model.gain_y[2].double() + model.gain_y[3].double()) / 2
    assert mid.y.dtype == torch.float64 and torch.equal(mid.y[0, :, 0, 0], want)
    with pytest.raises(ValueError, match="rate must be in 0..5"):
        model._gains(5.5, 1)


# -- size and bpp targets -------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_size_targets_land_within_two_percent(seed: int) -> None:
    img = _pil(64, 80, seed)
    lo = len(Codec(q=0).compress(img))
    hi = len(Codec(q=100).compress(img))
    codec = None
    for t in np.geomspace(lo * 1.08, hi * 0.92, 5):
        codec = Codec(size=int(t))
        res = codec.encode(img, keep_reconstruction=True)
        assert abs(len(res.data) - int(t)) <= 0.02 * int(t), (lo, hi, t, len(res.data))
    assert codec is not None
    _decodes_to_reconstruction(res)


def test_size_target_of_a_tiled_image_counts_every_tile() -> None:
    img = _pil(80, 150, 3)
    lo = len(Codec(q=0, tile_size=64).compress(img))
    hi = len(Codec(q=100, tile_size=64).compress(img))
    target = int(math.sqrt(lo * hi))  # one global quality, the sum of six tiles
    res = Codec(size=target, tile_size=64).encode(img, keep_reconstruction=True)
    assert res.tiles == 6 and abs(len(res.data) - target) <= 0.02 * target, (lo, hi, len(res.data))
    _decodes_to_reconstruction(res)


def test_bpp_target() -> None:
    img = _pil(64, 80, 4)
    res = Codec(bpp=0.9).encode(img)
    assert abs(res.bpp - 0.9) <= 0.02 * 0.9


def _main(argv: list[str]) -> int:
    from licodec.cli.main import main

    return main(argv)


def test_unreachable_targets_fail_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "a.png"
    _pil(48, 64).save(src)
    out = tmp_path / "a.lic"
    for args, message in [
        (["--size", "20"], "below the lowest rate"),
        (["--bpp", "20"], "above the highest rate"),
        (["--size", "100k"], "larger than the raw image (9216 bytes)"),
    ]:
        rc = _main(["compress", str(src), "-o", str(out), *args])
        err = capsys.readouterr().err
        assert rc == EXIT_TARGET and message in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists() and list(tmp_path.iterdir()) == [src]


@pytest.mark.parametrize(
    "args",
    [
        ["-q", "-3"],
        ["-q", "nan"],
        ["-q", "101"],
        ["--size", "0"],
        ["--bpp", "-1"],
        ["--effort", "99"],
        ["--size", "2k", "-q", "50"],
        ["--bpp", "1", "--size", "2k"],
    ],
)
def test_bad_knobs_are_usage_errors(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "a.png"
    _pil(16, 16).save(src)
    with pytest.raises(SystemExit) as exc:
        _main(["compress", str(src), *args])
    assert exc.value.code == 2
    assert "error: argument" in capsys.readouterr().err
    assert not (tmp_path / "a.lic").exists()


def test_fixed_rate_weights_have_no_scale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from licodec.models import create_model
    from licodec.zoo.weights import save_weights

    model = create_model("wacnn-tiny").eval()
    model.update(force=True)
    w = save_weights(model, tmp_path / "fixed.safetensors", meta={"quality": 3, "lambda": 0.01})
    src = tmp_path / "a.png"
    _pil(32, 32).save(src)
    for args in (["-q", "50"], ["--size", "2k"]):
        assert _main(["compress", str(src), "--weights", str(w), *args]) == EXIT_MODEL
        err = capsys.readouterr().err
        assert "fixed-rate: they code at their one trained point (quality index 3)" in err
    assert not (tmp_path / "a.lic").exists()
    with pytest.raises(ModelError, match="fixed-rate"):
        Codec(weights=w, q=20).compress(_pil(16, 16))


# -- effort -------------------------------------------------------------------------------


def test_refined_latents_cost_less_and_decode_bit_for_bit() -> None:
    from licodec.entropy.refine import refine_latents
    from licodec.zoo.load import load_model

    model = load_model()
    img = _pil(64, 64, 5)
    x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float() / 255
    r = refine_latents(model, x, 0.0018, 20, rate=2, check_every=2)
    assert r.loss < 0.99 * r.loss_start, (r.loss_start, r.loss)

    def real_loss(res: object) -> float:
        mse = np.mean((np.asarray(res.reconstruction, float) - np.asarray(img, float)) ** 2)  # type: ignore[attr-defined]
        return res.bpp + 0.0018 * mse  # type: ignore[attr-defined]  # λ·255²·MSE on 0..1 = λ·MSE on 0..255

    plain = Codec(q=40).encode(img, keep_reconstruction=True)
    refined = Codec(q=40, effort=1).encode(img, keep_reconstruction=True)
    assert refined.effort == 1 and refined.data != plain.data
    assert real_loss(refined) < real_loss(plain)
    _decodes_to_reconstruction(refined)
    assert Codec(q=40, effort=1).compress(img) == refined.data  # seeded: encodes repeat


@pytest.mark.parametrize("name", ["stf-lite", "tcm-lite"])
def test_refinement_of_every_lite_family_decodes_bit_for_bit(name: str, tmp_path: Path) -> None:
    from licodec.models import create_model
    from licodec.zoo.weights import save_weights

    torch.manual_seed(0)
    model = create_model(name, num_rates=2).eval()
    model.update(force=True)
    meta = {"qualities": [1, 2], "lambdas": [0.0035, 0.013], "metric": "mse"}
    w = save_weights(model, tmp_path / f"{name}.safetensors", meta=meta)
    img = _pil(64, 64, 8)
    plain = Codec(weights=w, q=50).encode(img, keep_reconstruction=True)
    refined = Codec(weights=w, q=50, effort=1).encode(img, keep_reconstruction=True)
    assert refined.data != plain.data
    decoded = np.asarray(Codec(weights=w).decode(refined.data))
    assert np.array_equal(decoded, np.asarray(refined.reconstruction))


def test_refinement_per_tile_and_without_portable(tmp_path: Path) -> None:
    img = _pil(80, 150, 6)
    res = Codec(q=55, effort=1, tile_size=64).encode(img, keep_reconstruction=True)
    assert res.tiles == 6
    _decodes_to_reconstruction(res)
    fast = Codec(q=55, effort=1, portable=False).encode(img, keep_reconstruction=True)
    _decodes_to_reconstruction(fast)


def test_size_with_effort_refines_at_the_target() -> None:
    img = _pil(64, 80, 7)
    target = len(Codec(q=60).compress(img))
    res = Codec(size=target, effort=1).encode(img, keep_reconstruction=True)
    assert abs(len(res.data) - target) <= 0.02 * target
    _decodes_to_reconstruction(res)


def test_ctrl_c_during_refinement_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from licodec.entropy import refine

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(refine, "refine_latents", interrupted)
    src = tmp_path / "a.png"
    _pil(32, 32).save(src)
    rc = _main(["compress", str(src), "--effort", "2", "--quiet"])
    assert rc == 130 and list(tmp_path.iterdir()) == [src]


def test_effort_needs_the_lambda(tmp_path: Path) -> None:
    from licodec.models import create_model
    from licodec.zoo.weights import save_weights

    model = create_model("wacnn-tiny").eval()
    model.update(force=True)
    w = save_weights(model, tmp_path / "nolambda.safetensors", meta={"quality": 2})
    with pytest.raises(ModelError, match="--effort needs the λ"):
        Codec(weights=w, effort=1).compress(_pil(16, 16))
    assert TargetError.exit_code == EXIT_TARGET == 7
