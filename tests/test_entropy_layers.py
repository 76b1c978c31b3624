"""licodec's own entropy layers against CompressAI 1.2.8 as the oracle.

What must hold for existing weights and files to keep working: the same
state_dict (names, shapes, dtypes), the same likelihoods and aux loss, coder
tables equal to the bit, and strings that CompressAI's layers decode.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch

from licodec.entropy.cdf import pmf_to_quantized_cdf, pmfs_to_quantized_cdfs
from licodec.entropy.channel_ar import get_scale_table
from licodec.entropy.models import EntropyBottleneck, GaussianConditional, LowerBound, ste_round

pytest.importorskip("compressai", reason="CompressAI (licodec[compressai]) is the oracle here")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from compressai._CXX import pmf_to_quantized_cdf as cai_pmf_to_quantized_cdf
    from compressai.entropy_models import EntropyBottleneck as CaiEB
    from compressai.entropy_models import GaussianConditional as CaiGC
    from compressai.ops import LowerBound as CaiLowerBound

    from licodec import _compressai  # noqa: F401

TABLES = ("_quantized_cdf", "_offset", "_cdf_length")


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _trained_like(eb: torch.nn.Module, seed: int) -> None:
    """Move an entropy bottleneck's parameters away from their init, as training does."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in eb.named_parameters():
            p.add_(torch.randn(p.shape, generator=g) * (3.0 if name == "quantiles" else 0.5))
        q = eb.quantiles
        q[:, 0, 0] -= torch.rand(q.shape[0], generator=g) * 20
        q[:, 0, 2] += torch.rand(q.shape[0], generator=g) * 20


def _pair(channels: int, seed: int, **kw) -> tuple[EntropyBottleneck, CaiEB]:
    ours = EntropyBottleneck(channels, **kw)
    theirs = CaiEB(channels, **kw)
    _trained_like(theirs, seed)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


def _cai_load(module: torch.nn.Module, state_dict: dict) -> None:
    """Strict load into a CompressAI layer (its own layers do not resize the tables; its
    CompressionModel does that for them)."""
    for name in (*TABLES, "scale_table"):
        if name in state_dict and hasattr(module, name):
            setattr(module, name, torch.empty_like(state_dict[name]))
    module.load_state_dict(state_dict, strict=True)


def _assert_tables_equal(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for name in TABLES:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype == torch.int32, name
        assert x.shape == y.shape and torch.equal(x, y), name


# -- state_dict ----------------------------------------------------------------


@pytest.mark.parametrize("channels,filters", [(192, (3, 3, 3, 3)), (5, (3, 3, 3, 3)), (7, (4, 2))])
def test_bottleneck_state_dict_equals_compressai(channels: int, filters: tuple[int, ...]) -> None:
    torch.manual_seed(3)
    ours = EntropyBottleneck(channels, filters=filters).state_dict()
    torch.manual_seed(3)
    theirs = CaiEB(channels, filters=filters).state_dict()
    assert list(ours) == list(theirs)
    for key in theirs:
        assert ours[key].shape == theirs[key].shape and ours[key].dtype == theirs[key].dtype, key
        # Same initial values, and the same random stream consumed (biases).
        assert torch.equal(ours[key], theirs[key]), key


@pytest.mark.parametrize("table", [None, [0.2, 1.0, 5.0]])
def test_gaussian_state_dict_equals_compressai(table: list[float] | None) -> None:
    ours, theirs = GaussianConditional(table).state_dict(), CaiGC(table).state_dict()
    assert list(ours) == list(theirs)
    for key in theirs:
        assert ours[key].dtype == theirs[key].dtype and torch.equal(ours[key], theirs[key]), key


def test_tables_resize_on_strict_load_and_old_names_load() -> None:
    _, theirs = _pair(6, 0)
    theirs.update(force=True)
    fresh = EntropyBottleneck(6)
    fresh.load_state_dict(theirs.state_dict(), strict=True)  # empty buffers take the stored sizes
    _assert_tables_equal(fresh, theirs)
    old = {
        k.replace("matrices.", "_matrix")
        .replace("biases.", "_bias")
        .replace("factors.", "_factor"): v
        for k, v in theirs.state_dict().items()
    }
    assert "_matrix0" in old
    again = EntropyBottleneck(6)
    again.load_state_dict(old, strict=True)
    assert torch.equal(again.matrices[0], theirs.matrices[0])
    gc = CaiGC(None)
    gc.update_scale_table(get_scale_table())
    mine = GaussianConditional(None)
    mine.load_state_dict(gc.state_dict(), strict=True)
    _assert_tables_equal(mine, gc)
    assert torch.equal(mine.scale_table, gc.scale_table)


# -- likelihoods and aux loss ----------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_bottleneck_likelihoods_and_aux_loss_equal_compressai(seed: int) -> None:
    ours, theirs = _pair(16, seed)
    x = torch.randn(2, 16, 6, 5, generator=torch.Generator().manual_seed(seed)) * 6
    for training in (False, True):
        torch.manual_seed(seed)
        ya, la = ours(x, training=training)
        torch.manual_seed(seed)
        yb, lb = theirs(x, training=training)
        assert torch.equal(ya, yb)
        assert (la - lb).abs().max().item() <= 1e-6
    v = x.transpose(0, 1).reshape(16, 1, -1)  # (C, 1, N): one density per row
    xg = v.clone().requires_grad_(True)
    la = ours._likelihood(xg)[0]
    lb = theirs._likelihood(v)[0]
    assert (la - lb).abs().max().item() <= 1e-6
    la.sum().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()
    assert abs(ours.loss().item() - theirs.loss().item()) <= 1e-6 * max(1.0, theirs.loss().item())
    # The aux loss trains the quantiles only.
    ours.zero_grad(set_to_none=True)
    ours.loss().backward()
    assert ours.quantiles.grad is not None and ours.matrices[0].grad is None
    assert torch.equal(ours._get_medians(), theirs._get_medians())


def test_gaussian_likelihoods_equal_compressai() -> None:
    g = torch.Generator().manual_seed(1)
    y = torch.randn(2, 8, 7, 7, generator=g) * 4
    scales = torch.rand(2, 8, 7, 7, generator=g) * 6  # some below the 0.11 bound
    means = torch.randn(2, 8, 7, 7, generator=g)
    ours, theirs = GaussianConditional(None), CaiGC(None)
    for training in (False, True):
        torch.manual_seed(0)
        ya, la = ours(y, scales, means, training=training)
        torch.manual_seed(0)
        yb, lb = theirs(y, scales, means, training=training)
        assert torch.equal(ya, yb)
        assert (la - lb).abs().max().item() <= 1e-6
    assert (ours._likelihood(y, scales) - theirs._likelihood(y, scales)).abs().max().item() <= 1e-6
    ours.update_scale_table(get_scale_table())
    theirs.update_scale_table(get_scale_table())
    assert torch.equal(ours.build_indexes(scales), theirs.build_indexes(scales))


def test_lower_bound_and_ste_gradients_equal_compressai() -> None:
    x = torch.linspace(-2, 2, 41, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    w = torch.randn(41, generator=torch.Generator().manual_seed(0))
    (LowerBound(0.3)(x) * w).sum().backward()
    (CaiLowerBound(0.3)(x2) * w).sum().backward()
    assert x.grad is not None and x2.grad is not None and torch.equal(x.grad, x2.grad)
    x.grad = None
    ste_round(x).sum().backward()
    assert torch.equal(x.grad, torch.ones(41))


# -- coder tables ------------------------------------------------------------------


def test_pmf_to_quantized_cdf_equals_compressai() -> None:
    rng = np.random.default_rng(0)
    for t in range(600):
        n = int(rng.integers(1, 300))
        kind = t % 4
        if kind == 0:
            p = rng.random(n)
        elif kind == 1:
            p = np.exp(-rng.random(n) * 40)  # many symbols far below 2**-16
        elif kind == 2:
            p = rng.random(n)
            p[rng.random(n) < 0.5] = 0.0
            p[0] += 1e-3
        else:
            p = np.exp(-0.5 * ((np.arange(n) - n / 2) / max(1.0, n / 30)) ** 2)
        p = p / p.sum() * rng.uniform(0.5, 1.5)
        expected = cai_pmf_to_quantized_cdf(p.tolist(), 16)
        assert pmf_to_quantized_cdf(torch.tensor(p)).tolist() == expected, t
    # Probabilities a hair below a half unit, that float32 rounds onto it: the reference
    # rounds the float32 value half away from zero (up), a float64 computation would not.
    k = np.arange(40, 80, dtype=np.float64)
    p = (k + 0.5 - 1e-6) / 65536
    assert (p.astype(np.float32).astype(np.float64) == (k + 0.5) / 65536).all()
    p = np.concatenate([p, [(65536 - (k + 1).sum()) / 65536]])  # a total of exactly 2**16
    expected = cai_pmf_to_quantized_cdf(p.tolist(), 16)
    assert np.diff(expected)[:40].tolist() == (k + 1).tolist()
    assert pmf_to_quantized_cdf(torch.tensor(p)).tolist() == expected
    # several rows at once, with different lengths
    rows = torch.rand(5, 40, dtype=torch.float64)
    lengths = [40, 1, 17, 3, 39]
    got = pmfs_to_quantized_cdfs(rows, lengths)
    for i, n in enumerate(lengths):
        assert got[i, : n + 1].tolist() == cai_pmf_to_quantized_cdf(rows[i, :n].tolist(), 16)
        assert not got[i, n + 1 :].any()
    with pytest.raises(ValueError):
        pmf_to_quantized_cdf(torch.zeros(4))
    with pytest.raises(ValueError):
        pmf_to_quantized_cdf(torch.tensor([0.5, -0.1, 0.6]))


@pytest.mark.parametrize("channels,seed", [(192, 0), (192, 1), (320, 2), (8, 3), (1, 4)])
def test_bottleneck_tables_bit_equal_compressai(channels: int, seed: int) -> None:
    ours, theirs = _pair(channels, seed)
    assert ours.update() and not ours.update()  # built once, then only on force
    theirs.update()
    _assert_tables_equal(ours, theirs)
    # The float64 build (what ChannelARModel.update uses) equals CompressAI's on a float64 copy.
    exact = copy.deepcopy(theirs).double()
    exact.update(force=True)
    assert ours.update(force=True, dtype=torch.float64)
    _assert_tables_equal(ours, exact)
    # update_quantiles: the bisection lands on the same quantiles, hence the same tables
    theirs.update(force=True, update_quantiles=True)
    ours.update(force=True, update_quantiles=True)
    assert torch.equal(ours.quantiles, theirs.quantiles)
    _assert_tables_equal(ours, theirs)


@pytest.mark.parametrize("table", ["default", "random", "short"])
def test_gaussian_tables_bit_equal_compressai(table: str) -> None:
    if table == "default":
        scales = get_scale_table()
    elif table == "random":
        scales = torch.sort(torch.rand(20, generator=torch.Generator().manual_seed(5)) * 40 + 0.05)[
            0
        ]
    else:
        scales = torch.tensor([0.11, 0.5, 2.0])
    ours, theirs = GaussianConditional(None), CaiGC(None)
    assert ours.update_scale_table(scales) and not ours.update_scale_table(scales)
    theirs.update_scale_table(scales)
    _assert_tables_equal(ours, theirs)
    assert torch.equal(ours.scale_table, theirs.scale_table)
    ours2, theirs2 = GaussianConditional(None, tail_mass=1e-6), CaiGC(None, tail_mass=1e-6)
    ours2.update_scale_table(scales)
    theirs2.update_scale_table(scales)
    _assert_tables_equal(ours2, theirs2)


def _shipped():
    from licodec.zoo import pretrained
    from licodec.zoo.weights import load_weights

    path = pretrained._weights_dir() / "wacnn-lite.safetensors"
    if not path.is_file():
        pytest.skip("no shipped weights in this checkout")
    return path, load_weights(path)[0]


def test_shipped_model_tables_bit_equal_compressai() -> None:
    _, model = _shipped()
    eb, gc = model.entropy_bottleneck, model.gaussian_conditional
    assert isinstance(eb, EntropyBottleneck) and isinstance(gc, GaussianConditional)
    theirs = CaiEB(eb.channels)
    _cai_load(theirs, eb.state_dict())
    exact = copy.deepcopy(theirs).double()
    exact.update(force=True)
    _assert_tables_equal(eb, exact)  # what load_weights built: the float64 z tables
    theirs.update(force=True)
    eb32 = copy.deepcopy(eb)
    eb32.update(force=True)
    _assert_tables_equal(eb32, theirs)
    cgc = CaiGC(None)
    cgc.update_scale_table(get_scale_table())
    _assert_tables_equal(gc, cgc)
    # model.update(force=True) rebuilds exactly the same tables
    before = {k: v.clone() for k, v in model.state_dict().items() if k.rsplit(".", 1)[-1] in TABLES}
    assert model.update(force=True)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_shipped_weights_load_strictly() -> None:
    from safetensors.torch import load_file

    from licodec.zoo.weights import model_from_config, read_config

    path, model = _shipped()
    stored = load_file(str(path))
    fresh = model_from_config(read_config(path))
    ours = fresh.state_dict()
    # Every stored tensor is one of ours, with its shape; only the derived tables are not stored.
    assert set(stored) <= set(ours)
    assert {k.rsplit(".", 1)[-1] for k in set(ours) - set(stored)} <= {*TABLES, "scale_table"}
    for key, value in stored.items():
        assert value.shape == ours[key].shape, key
    # A full state_dict (tables included, of other sizes than the empty buffers) loads strictly.
    assert fresh.gaussian_conditional._quantized_cdf.numel() == 0
    fresh.load_state_dict(model.state_dict(), strict=True)
    for prefix in ("entropy_bottleneck", "gaussian_conditional"):
        _assert_tables_equal(getattr(fresh, prefix), getattr(model, prefix))
    # and CompressAI's layers take ours strictly (interop both ways)
    _cai_load(CaiEB(model.entropy_bottleneck.channels), model.entropy_bottleneck.state_dict())
    _cai_load(CaiGC(None), model.gaussian_conditional.state_dict())


# -- coding --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(2))
def test_bottleneck_round_trip_and_strings_equal_compressai(seed: int) -> None:
    ours, theirs = _pair(12, seed)
    ours.update()
    theirs.update()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 12, 5, 7, generator=g) * 8
    x[0, 0, 0, 0] = 1e4  # far outside the table: the escape path
    x[1, 3, 2, 2] = -3e3
    expected = theirs.quantize(x, "dequantize", theirs._get_medians().reshape(1, -1, 1, 1))
    decoded = ours.decompress(ours.compress(x), (5, 7))  # range-coded (format 4)
    assert torch.equal(decoded, expected)
    assert torch.equal(ours(x, training=False)[0], decoded)
    # CompressAI's rANS strings (files of formats 1-3) decode to the same values
    rans = theirs.compress(x)
    assert torch.equal(ours.decompress(rans, (5, 7), coder="rans"), expected)


def test_gaussian_round_trip_and_strings_equal_compressai() -> None:
    ours, theirs = GaussianConditional(None), CaiGC(None)
    ours.update_scale_table(get_scale_table())
    theirs.update_scale_table(get_scale_table())
    g = torch.Generator().manual_seed(2)
    y = torch.randn(2, 6, 8, 8, generator=g) * 10
    scales = torch.rand(2, 6, 8, 8, generator=g) * 12
    means = torch.randn(2, 6, 8, 8, generator=g)
    idx = ours.build_indexes(scales)
    y[0, 0, 0, 0] = 5e4  # escapes
    y[1, 2, 3, 4] = -7e2
    expected = torch.round(y - means) + means
    strings = ours.compress(y, idx, means)
    assert torch.equal(ours.decompress(strings, idx, means=means), expected)
    rans = theirs.compress(y, idx, means)
    assert torch.equal(ours.decompress(rans, idx, means=means, coder="rans"), expected)
    with pytest.raises(ValueError):
        GaussianConditional(None).compress(y, idx, means)  # no tables yet
