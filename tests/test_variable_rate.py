"""Variable-rate models (gain units): one set of weights, several operating points.

Covers the model contract with ``rate``, the codec (the container's quality
selects the rate when decoding), evaluation of every rate of one file, the
per-image λ of the loss, and training from a fixed-rate start.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from codec_helpers import one_thread, photo  # noqa: F401
from conftest import smooth_image
from PIL import Image

from licodec.errors import InputError, ModelError
from licodec.models import create_model, get_spec, list_models

RATES = 3


def _vr_model(seed: int = 0) -> torch.nn.Module:
    """wacnn-tiny with three rates whose gains differ clearly."""
    torch.manual_seed(seed)
    model = create_model("wacnn-tiny", num_rates=RATES).eval()
    with torch.no_grad():
        for r, g in enumerate((0.0, 2.0, 4.0)):  # log-gains: coarse ... fine
            model.gain_y[r].fill_(g)
            model.inv_gain_y[r].fill_(-g)
    model.update(force=True)
    return model


def _train_dir(tmp_path: Path, widths: list[int]) -> Path:
    """A folder of training photos, 72 px high, one per width."""
    data = tmp_path / "data"
    data.mkdir()
    for i, w in enumerate(widths):
        Image.fromarray(photo(72, w, i)).save(data / f"{i}.png")
    return data


def _image(h: int, w: int) -> torch.Tensor:
    return smooth_image(h, w)


def _pil(h: int, w: int) -> Image.Image:
    return Image.fromarray(photo(h, w))


@pytest.mark.parametrize("size", [(1, 1), (37, 53), (70, 130)])
def test_every_rate_round_trips_exactly(size: tuple[int, int]) -> None:
    model = _vr_model()
    x = _image(*size)
    lengths = []
    for r in range(RATES):
        with torch.no_grad():
            ref = model(x, r)["x_hat"].clamp(0, 1)
        enc = model.compress(x, rate=r)
        dec = model.decompress(enc["strings"], enc["shape"], enc["size"], rate=r)["x_hat"]
        assert torch.equal(dec, ref), r
        lengths.append(len(enc["strings"][0][0]))
    if size != (1, 1):  # larger gains = finer quantization = more bits
        assert lengths[0] < lengths[1] < lengths[2], lengths


def test_rate_per_image_equals_separate_calls() -> None:
    model = _vr_model()
    x = torch.cat([_image(64, 64), _image(64, 64).flip(-1)])
    with torch.no_grad():
        both = model(x, torch.tensor([0, 2]))["x_hat"]
        a = model(x[:1], 0)["x_hat"]
        b = model(x[1:], 2)["x_hat"]
    torch.testing.assert_close(both, torch.cat([a, b]), atol=1e-5, rtol=0)


def test_rate_errors_are_clear() -> None:
    model = _vr_model()
    x = _image(16, 16)
    with pytest.raises(ValueError, match=r"variable-rate model: pass rate in 0\.\.2"):
        model(x)
    with pytest.raises(ValueError, match=r"rate must be in 0\.\.2"):
        model.compress(x, rate=3)
    fixed = create_model("wacnn-tiny").eval()
    with pytest.raises(ValueError, match="fixed-rate"):
        fixed(x, 0)


def test_zero_gains_equal_the_fixed_rate_model() -> None:
    torch.manual_seed(1)
    fixed = create_model("wacnn-tiny").eval()
    vr = create_model("wacnn-tiny", num_rates=RATES).eval()
    missing, unexpected = vr.load_state_dict(fixed.state_dict(), strict=False)
    assert sorted(missing) == ["gain_y", "gain_z", "inv_gain_y", "inv_gain_z"] and not unexpected
    x = _image(40, 72)
    with torch.no_grad():
        ref = fixed(x)
        out = vr(x, 1)
    assert torch.equal(out["x_hat"], ref["x_hat"])
    assert torch.equal(out["likelihoods"]["y"], ref["likelihoods"]["y"])


def test_lite_models_are_variable_rate_and_full_size_ones_fixed() -> None:
    for name in list_models():
        rates = get_spec(name).kwargs.get("num_rates", 0)
        assert rates == (6 if name.endswith("-lite") else 0), name


# -- codec ------------------------------------------------------------------------


@pytest.fixture()
def vr_weights(tmp_path: Path) -> Path:
    from licodec.zoo.weights import save_weights

    model = _vr_model()
    meta = {"qualities": [1, 2, 3], "lambdas": [0.001, 0.01, 0.1], "metric": "mse"}
    return save_weights(model, tmp_path / "vr.safetensors", meta=meta)


def test_codec_codes_each_quality_and_decodes_from_the_file_alone(vr_weights: Path) -> None:
    from licodec import Codec
    from licodec.codec.container import parse

    img = _pil(45, 67)
    sizes = []
    for q in (1, 3):
        res = Codec(weights=vr_weights, quality=q).encode(img, keep_reconstruction=True)
        assert parse(res.data).quality == q
        decoded = Codec(weights=vr_weights).decode(res.data)  # no quality given
        assert np.array_equal(np.asarray(decoded), np.asarray(res.reconstruction))
        sizes.append(len(res.data))
    assert sizes[0] < sizes[1]


def test_codec_needs_a_quality_in_range(vr_weights: Path) -> None:
    from licodec import Codec

    img = _pil(16, 16)
    with pytest.raises(ModelError, match=r"variable-rate: quality must be 1\.\.3, got 0"):
        Codec(weights=vr_weights).encode(img)
    with pytest.raises(ModelError, match=r"quality must be 1\.\.3, got 4"):
        Codec(weights=vr_weights, quality=4).encode(img)


def test_cli_compress_and_decompress_a_variable_rate_file(vr_weights: Path, tmp_path: Path) -> None:
    from licodec.cli.main import main

    src = tmp_path / "in.png"
    _pil(33, 47).save(src)
    out = tmp_path / "in.lic"
    assert (
        main(
            [
                "compress",
                str(src),
                "-o",
                str(out),
                "--weights",
                str(vr_weights),
                "--quality",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    back = tmp_path / "back.png"
    assert (
        main(["decompress", str(out), "-o", str(back), "--weights", str(vr_weights), "--quiet"])
        == 0
    )
    assert Image.open(back).size == (47, 33)
    assert (
        main(
            [
                "compress",
                str(src),
                "-o",
                str(tmp_path / "x.lic"),
                "--weights",
                str(vr_weights),
                "--quiet",
            ]
        )
        == 5
    )
    assert not (tmp_path / "x.lic").exists()


# -- evaluation -----------------------------------------------------------------------


def test_eval_points_of_a_variable_rate_file(vr_weights: Path) -> None:
    from licodec.eval.evaluate import is_variable_rate, resolve_points

    assert is_variable_rate(vr_weights)
    points = resolve_points(None, None, [str(vr_weights)])
    assert [p.quality for p in points] == [1, 2, 3]
    assert [p.lmbda for p in points] == [0.001, 0.01, 0.1]
    assert len({p.key for p in points}) == 3
    assert [p.quality for p in resolve_points(None, [2], [str(vr_weights)])] == [2]
    with pytest.raises(InputError, match="1..3"):
        resolve_points(None, [5], [str(vr_weights)])


def test_eval_points_of_a_zoo_model_default_to_every_shipped_quality() -> None:
    from licodec.errors import ModelError
    from licodec.eval.evaluate import resolve_points
    from licodec.zoo.pretrained import entries

    shipped = sorted(e.quality for e in entries() if e.arch == "wacnn-lite")
    assert len(shipped) >= 4
    points = resolve_points("wacnn-lite", None, None)
    assert [p.quality for p in points] == shipped
    assert [p.quality for p in resolve_points("wacnn-lite", [2], None)] == [2]
    with pytest.raises(ModelError, match="no shipped weights for 'tcm-s'"):
        resolve_points("tcm-s", None, None)


def test_eval_real_files_at_two_rates(vr_weights: Path, tmp_path: Path) -> None:
    from licodec.eval.evaluate import evaluate_image, resolve_points

    src = tmp_path / "a.png"
    _pil(40, 56).save(src)
    points = resolve_points(None, [1, 3], [str(vr_weights)])
    real = evaluate_image(src, points)
    est = evaluate_image(src, points, estimate=True)
    assert real["bpp"][0] < real["bpp"][1]
    assert est["bpp"][0] < est["bpp"][1]


# -- training -------------------------------------------------------------------------


def test_loss_weights_each_image_by_its_lambda() -> None:
    from licodec.train.losses import RateDistortionLoss

    x = torch.rand(2, 3, 8, 8)
    x_hat = x + torch.stack([torch.full_like(x[0], 0.1), torch.full_like(x[0], 0.2)])
    lik = {"y": torch.full((2, 4, 2, 2), 0.5)}
    out = {"x_hat": x_hat, "likelihoods": lik}
    lam = torch.tensor([0.01, 0.1])
    got = RateDistortionLoss(1.0)(out, x, lam)
    bpp = 2 * 16 / (2 * 64)
    expected = (0.01 * 0.01 + 0.1 * 0.04) / 2 * 255**2 + bpp
    assert float(got["loss"]) == pytest.approx(expected, rel=1e-5)
    same = RateDistortionLoss(0.05)(out, x)
    assert float(same["loss"]) == pytest.approx(
        float(RateDistortionLoss(1.0)(out, x, torch.tensor([0.05, 0.05]))["loss"]), rel=1e-6
    )


def test_config_lambdas_of_a_variable_rate_model() -> None:
    from licodec.train.config import TrainConfig

    cfg = TrainConfig(model="wacnn-lite", quality=4)
    assert cfg.num_rates == 6
    assert cfg.lambdas == [0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483]
    assert TrainConfig(model="tcm-lite").lambdas[0] == 0.0025  # TCM's own table
    assert TrainConfig(model="wacnn-tiny").lambdas == [0.0067]
    fixed = TrainConfig(model="wacnn-lite", model_kwargs={"num_rates": 0}, quality=2)
    assert fixed.num_rates == 0 and fixed.lambdas == [0.0035]
    with pytest.raises(InputError, match="do not set lmbda"):
        _ = TrainConfig(model="wacnn-lite", lmbda=0.01).lambdas
    own = [0.0006, 0.0013, 0.003, 0.0067, 0.018, 0.0483]
    assert TrainConfig(model="wacnn-lite", rate_lambdas=own).lambdas == own
    for bad in ([0.001] * 6, own[:5], [*own[:5], -1.0]):
        with pytest.raises(InputError, match="rate_lambdas must be 6 increasing"):
            TrainConfig(model="wacnn-lite", data="d", rate_lambdas=bad).validate()
    with pytest.raises(InputError, match="rate_lambdas is for a variable-rate model"):
        TrainConfig(model="wacnn-tiny", data="d", rate_lambdas=[0.01]).validate()


def test_retarget_rates_interpolates_gains_in_log_lambda() -> None:
    torch.manual_seed(0)
    model = create_model("wacnn-tiny", num_rates=3)
    with torch.no_grad():
        for p in (model.gain_y, model.inv_gain_y, model.gain_z, model.inv_gain_z):
            p.normal_()
    before = {n: p.detach().clone() for n, p in model.named_parameters() if "gain" in n}
    old = [0.001, 0.004, 0.016]
    # an old λ keeps its gains; the geometric midpoint averages the log-gains;
    # below the table the first segment is extended
    model.retarget_rates(old, [0.0005, 0.002, 0.016])
    for n, g in before.items():
        p = dict(model.named_parameters())[n]
        torch.testing.assert_close(p[2], g[2])
        torch.testing.assert_close(p[1], (g[0] + g[1]) / 2)
        torch.testing.assert_close(p[0], g[0] - (g[1] - g[0]) / 2)
    with pytest.raises(ValueError, match="increasing"):
        model.retarget_rates([0.004, 0.001, 0.016], old)


def test_training_from_a_fixed_rate_start(tmp_path: Path) -> None:
    pytest.importorskip("lightning")
    from licodec.train.config import TrainConfig
    from licodec.train.trainer import run_training
    from licodec.zoo.weights import load_weights, save_weights

    data = _train_dir(tmp_path, [80, 88, 96, 104])
    torch.manual_seed(0)
    start = save_weights(create_model("wacnn-tiny"), tmp_path / "fixed.safetensors")
    cfg = TrainConfig(
        model="wacnn-tiny",
        model_kwargs={"num_rates": RATES},
        data=str(data),
        out=str(tmp_path / "run"),
        init=str(start),
        crop=64,
        batch_size=4,
        steps=3,
        lr=1e-3,
        schedule="constant",
        log_every=1,
        ckpt_every=3,
        val_every=1000,
        progress="none",
        threads=1,
        seed=0,
    )
    result = run_training(cfg)
    assert result.step == 3
    model, meta = load_weights(tmp_path / "run" / "model.safetensors")
    assert meta["qualities"] == [1, 2, 3] and meta["quality"] is None
    assert meta["lambdas"] == [0.0018, 0.0035, 0.0067]
    assert model.num_rates == RATES
    # gains start spread as sqrt(λ_r / λ_ref) around the start's λ (unknown here: the
    # geometric mean), then learn (3 Adam steps of 1e-3 move them by at most 0.003)
    lams = torch.tensor([0.0018, 0.0035, 0.0067])
    spread = 0.5 * torch.log(lams / lams.log().mean().exp())
    torch.testing.assert_close(model.gain_y.mean(1), spread, atol=4e-3, rtol=0)
    torch.testing.assert_close(model.inv_gain_y.mean(1), -spread, atol=4e-3, rtol=0)
    assert not torch.equal(model.gain_y, spread[:, None].expand_as(model.gain_y))
    x = _image(32, 48)
    with torch.no_grad():
        ref = model(x, 2)["x_hat"].clamp(0, 1)
    enc = model.compress(x, rate=2)
    assert torch.equal(
        model.decompress(enc["strings"], enc["shape"], enc["size"], rate=2)["x_hat"], ref
    )


def test_files_from_before_variable_rate_load_as_fixed_rate() -> None:
    from licodec.zoo.weights import model_from_config

    kwargs = dict(get_spec("wacnn-lite").kwargs)
    del kwargs["num_rates"]  # what a file written before variable rate existed holds
    assert model_from_config({"arch": "wacnn-lite", "kwargs": kwargs}).num_rates == 0
    assert (
        model_from_config({"arch": "wacnn-lite", "kwargs": {**kwargs, "num_rates": 6}}).num_rates
        == 6
    )


def test_init_from_variable_rate_weights_with_other_lambdas(tmp_path: Path) -> None:
    from licodec.train.trainer import load_init_weights
    from licodec.zoo.weights import save_weights

    torch.manual_seed(0)
    src = create_model("wacnn-tiny", num_rates=3)
    with torch.no_grad():
        src.gain_y.normal_()
    path = save_weights(src, tmp_path / "vr.safetensors", {"lambdas": [0.001, 0.004, 0.016]})
    same = create_model("wacnn-tiny", num_rates=3)
    load_init_weights(same, str(path), "wacnn-tiny", [0.001, 0.004, 0.016])
    torch.testing.assert_close(same.gain_y, src.gain_y)
    moved = create_model("wacnn-tiny", num_rates=3)
    desc = load_init_weights(moved, str(path), "wacnn-tiny", [0.002, 0.004, 0.016])
    assert "gains moved from λ=0.001, 0.004, 0.016" in desc
    torch.testing.assert_close(moved.gain_y[1:], src.gain_y[1:])
    torch.testing.assert_close(moved.gain_y[0], (src.gain_y[0] + src.gain_y[1]) / 2)


@pytest.mark.parametrize("name", ["wacnn-tiny", "tcm-tiny"])
def test_channels_last_training_matches_the_default_layout(tmp_path: Path, name: str) -> None:
    """NHWC is a speed setting: the same step computes the same loss in either layout."""
    pytest.importorskip("lightning")
    from licodec.train.config import TrainConfig
    from licodec.train.trainer import run_training
    from licodec.zoo.weights import load_weights

    data = _train_dir(tmp_path, [80] * 4)
    models, losses = [], []
    for nhwc in (False, True):
        cfg = TrainConfig(
            model=name,
            data=str(data),
            out=str(tmp_path / f"run{nhwc}"),
            crop=64,
            batch_size=2,
            steps=1,
            lr=1e-5,
            schedule="constant",
            log_every=1,
            ckpt_every=1,
            val_every=1000,
            progress="none",
            threads=1,
            seed=0,
            channels_last=nhwc,
        )
        result = run_training(cfg)
        assert result.step == 1
        losses.append(result.train["loss"])
        models.append(load_weights(tmp_path / f"run{nhwc}" / "model.safetensors")[0])
    # Same function, other layout; rounding in the slice loop turns float32 noise into
    # ~1e-5 of the loss.
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
    x = _image(32, 48)
    enc = models[1].compress(x)
    with torch.no_grad():
        ref = models[1](x)["x_hat"].clamp(0, 1)
    assert torch.equal(models[1].decompress(**enc)["x_hat"], ref)


def test_init_with_bad_lambdas_is_a_model_error(tmp_path: Path) -> None:
    from licodec.errors import ModelError
    from licodec.train.trainer import load_init_weights
    from licodec.zoo.weights import save_weights

    src = create_model("wacnn-tiny", num_rates=3)
    path = save_weights(src, tmp_path / "vr.safetensors", {"lambdas": [0.004, 0.001, 0.016]})
    with pytest.raises(ModelError, match="increasing"):
        load_init_weights(
            create_model("wacnn-tiny", num_rates=3), str(path), "wacnn-tiny", [0.001, 0.004, 0.016]
        )


def test_rate_weights_are_checked_and_steer_the_drawn_rates() -> None:
    pytest.importorskip("lightning")
    from licodec.train.config import RESUME_MUTABLE, TrainConfig, resolve_config
    from licodec.train.module import LitCompression

    for bad in (
        [1.0] * 5,
        [0.0] * 6,
        [1.0, 1.0, 1.0, 1.0, 1.0, -1.0],
        [1.0] * 5 + [float("nan")],
        [1.0] * 5 + [float("inf")],
        [1e308] * 6,
        ["x"] * 6,
        [True] * 6,
        "1,1,1,1,1,1",
    ):
        with pytest.raises(InputError, match="rate_weights must be 6 non-negative numbers"):
            cfg = TrainConfig(model="wacnn-lite", data="d", rate_weights=bad)  # type: ignore[arg-type]
            cfg.validate()
    with pytest.raises(InputError, match="rate_weights is for a variable-rate model"):
        TrainConfig(model="wacnn-tiny", data="d", rate_weights=[1.0]).validate()
    strings = TrainConfig(
        model="wacnn-lite", data="d", out="o", rate_weights=["1", 2, "3.5", 0, 1, 1]
    )  # type: ignore[list-item]
    assert strings.validate().rate_weights == [1.0, 2.0, 3.5, 0.0, 1.0, 1.0]
    # which points get the steps may change on resume (given as --set), what they mean may not
    saved = resolve_config(flags={"model": "wacnn-lite", "data": "d", "out": "o"}).to_dict()
    assert saved["rate_weights"] is None
    cfg = resolve_config(flags={}, sets=["rate_weights=[1,1,1,1,2,3]"], resume_from=saved)
    assert cfg.rate_weights == [1.0, 1.0, 1.0, 1.0, 2.0, 3.0]
    back = resolve_config(flags={}, sets=["rate_weights=null"], resume_from=cfg.to_dict())
    assert back.rate_weights is None
    with pytest.raises(InputError, match="cannot change 'rate_lambdas'"):
        resolve_config(flags={}, sets=["rate_lambdas=[1,2,3,4,5,6]"], resume_from=saved)
    assert "rate_weights" in RESUME_MUTABLE

    def drawn(weights: list[float] | None) -> torch.Tensor:
        cfg = TrainConfig(
            model="wacnn-tiny",
            model_kwargs={"num_rates": 3},
            data="d",
            out="o",
            rate_weights=weights,
        ).validate()
        torch.manual_seed(0)
        return LitCompression(create_model("wacnn-tiny", num_rates=3), cfg)._draw_rates(30_000)

    counts = torch.bincount(drawn([1.0, 0.0, 3.0]), minlength=3).double() / 30_000
    assert counts[1] == 0
    assert abs(float(counts[2]) - 0.75) < 0.01  # 3:1, within ~4 standard deviations
    uniform = torch.bincount(drawn(None), minlength=3).double() / 30_000
    assert float((uniform - 1 / 3).abs().max()) < 0.012
