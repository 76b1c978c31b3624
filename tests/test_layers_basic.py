"""licodec's basic layers (conv helpers, GDN, residual blocks) against CompressAI 1.2.8.

They replace CompressAI's layers of the same names in WACNN, STF and TCM, so the
authors' checkpoints and our shipped weights must load strictly and give the same
bits: the same state_dict (names, shapes, dtypes; even the same values from the
same seed), bit-identical outputs and gradients, and model code that no longer
imports CompressAI. CompressAI is only the test oracle here (skipped without it).
"""

from __future__ import annotations

import ast
import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from codec_helpers import one_thread  # noqa: F401 (an autouse fixture)
from torch import Tensor, nn

import licodec
from licodec.layers import basic
from licodec.models import create_model

SRC = Path(licodec.__file__).resolve().parents[1]
PKG = SRC / "licodec"


@pytest.fixture(scope="module")
def cai() -> SimpleNamespace:
    """CompressAI's layers and conv helpers, imported without their jit warning."""
    with contextlib.suppress(ImportError):
        from licodec import _compressai  # noqa: F401
    layers = pytest.importorskip("compressai.layers")
    utils = pytest.importorskip("compressai.models.utils")
    return SimpleNamespace(layers=layers, conv=utils.conv, deconv=utils.deconv)


# name -> (ours, CompressAI's, input channels, input size): both built with the same arguments.
Build = Callable[[SimpleNamespace], nn.Module]
CASES: dict[str, tuple[Build, Build, int, int]] = {
    "conv1x1": (lambda _: basic.conv1x1(6, 10), lambda c: c.layers.conv1x1(6, 10), 6, 9),
    "conv1x1-s2": (
        lambda _: basic.conv1x1(6, 10, stride=2),
        lambda c: c.layers.conv1x1(6, 10, stride=2),
        6,
        9,
    ),
    "conv3x3": (lambda _: basic.conv3x3(6, 10), lambda c: c.layers.conv3x3(6, 10), 6, 9),
    "conv3x3-s2": (
        lambda _: basic.conv3x3(6, 10, stride=2),
        lambda c: c.layers.conv3x3(6, 10, stride=2),
        6,
        9,
    ),
    "subpel": (
        lambda _: basic.subpel_conv3x3(6, 4, 2),
        lambda c: c.layers.subpel_conv3x3(6, 4, 2),
        6,
        7,
    ),
    "subpel-r1": (
        lambda _: basic.subpel_conv3x3(6, 4),
        lambda c: c.layers.subpel_conv3x3(6, 4),
        6,
        7,
    ),
    "conv": (lambda _: basic.conv(3, 8), lambda c: c.conv(3, 8), 3, 11),
    "conv-k3s1": (lambda _: basic.conv(3, 8, 3, 1), lambda c: c.conv(3, 8, 3, 1), 3, 11),
    "deconv": (lambda _: basic.deconv(8, 3), lambda c: c.deconv(8, 3), 8, 6),
    "deconv-k3s1": (lambda _: basic.deconv(8, 3, 3, 1), lambda c: c.deconv(8, 3, 3, 1), 8, 6),
    "gdn": (lambda _: basic.GDN(8), lambda c: c.layers.GDN(8), 8, 6),
    "igdn": (
        lambda _: basic.GDN(8, inverse=True),
        lambda c: c.layers.GDN(8, inverse=True),
        8,
        6,
    ),
    "gdn-args": (
        lambda _: basic.GDN(5, beta_min=1e-3, gamma_init=0.5),
        lambda c: c.layers.GDN(5, beta_min=1e-3, gamma_init=0.5),
        5,
        6,
    ),
    "res": (lambda _: basic.ResidualBlock(8, 8), lambda c: c.layers.ResidualBlock(8, 8), 8, 7),
    "res-widen": (
        lambda _: basic.ResidualBlock(6, 8),
        lambda c: c.layers.ResidualBlock(6, 8),
        6,
        7,
    ),
    "res-stride": (
        lambda _: basic.ResidualBlockWithStride(6, 8),
        lambda c: c.layers.ResidualBlockWithStride(6, 8),
        6,
        9,
    ),
    "res-stride1-same": (
        lambda _: basic.ResidualBlockWithStride(8, 8, 1),
        lambda c: c.layers.ResidualBlockWithStride(8, 8, 1),
        8,
        7,
    ),
    "res-stride1-widen": (
        lambda _: basic.ResidualBlockWithStride(6, 8, 1),
        lambda c: c.layers.ResidualBlockWithStride(6, 8, 1),
        6,
        7,
    ),
    "res-up": (
        lambda _: basic.ResidualBlockUpsample(8, 6),
        lambda c: c.layers.ResidualBlockUpsample(8, 6),
        8,
        5,
    ),
    "res-up3": (
        lambda _: basic.ResidualBlockUpsample(8, 6, 3),
        lambda c: c.layers.ResidualBlockUpsample(8, 6, 3),
        8,
        5,
    ),
}


def _perturb(module: nn.Module, seed: int) -> None:
    """Random trained-like parameters; some of GDN's stored values below their bounds."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            if name.endswith(("beta", "gamma")):
                p.abs_()
                if name.endswith("beta"):
                    p.add_(0.5)
                p.view(-1)[::3] = -0.01  # below the bound: clipped, gradient gated
                p.view(-1)[1::7] = 0.0


def _pair(cai: SimpleNamespace, case: str, seed: int = 1) -> tuple[nn.Module, nn.Module]:
    ours_fn, theirs_fn, _, _ = CASES[case]
    theirs = theirs_fn(cai)
    _perturb(theirs, seed)
    ours = ours_fn(cai)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


def _input(case: str, seed: int = 2, dtype: torch.dtype = torch.float32) -> Tensor:
    _, _, ch, size = CASES[case]
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, ch, size, size + 3, generator=g).to(dtype)


@pytest.mark.parametrize("case", CASES)
def test_same_state_dict_and_same_init_from_the_same_seed(cai: SimpleNamespace, case: str) -> None:
    ours_fn, theirs_fn, _, _ = CASES[case]
    torch.manual_seed(5)
    theirs = theirs_fn(cai)
    torch.manual_seed(5)
    ours = ours_fn(cai)
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    for k in a:
        assert a[k].shape == b[k].shape and a[k].dtype == b[k].dtype, k
        # Same values too: the same RNG draws in the same order, and GDN's init and bounds.
        assert torch.equal(a[k], b[k]), k
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    # And the other way round: our state_dict loads strictly into CompressAI's layer.
    theirs.load_state_dict(ours.state_dict(), strict=True)


@pytest.mark.parametrize("case", CASES)
def test_forward_and_gradients_bit_identical(cai: SimpleNamespace, case: str) -> None:
    ours, theirs = _pair(cai, case)
    xa = _input(case).requires_grad_()
    xb = xa.detach().clone().requires_grad_()
    ya, yb = ours(xa), theirs(xb)
    assert ya.shape == yb.shape and ya.dtype == yb.dtype
    assert torch.equal(ya, yb)
    w = torch.randn(ya.shape, generator=torch.Generator().manual_seed(3))
    (ya * w).sum().backward()
    (yb * w).sum().backward()
    assert xa.grad is not None and torch.equal(xa.grad, xb.grad)
    pb = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad is not None and torch.equal(p.grad, pb[name].grad), name
    with torch.no_grad():  # eval / no-grad path, a second input
        x2 = _input(case, seed=7)
        assert torch.equal(ours.eval()(x2), theirs.eval()(x2))


@pytest.mark.parametrize("case", ["gdn", "igdn", "res-stride", "res-up"])
def test_float64_bit_identical(cai: SimpleNamespace, case: str) -> None:
    """Portable mode runs parts of a model in float64: buffers follow the module's dtype."""
    ours, theirs = _pair(cai, case)
    ours.double()
    theirs.double()
    x = _input(case, dtype=torch.float64)
    with torch.no_grad():
        y = ours(x)
        assert y.dtype == torch.float64
        assert torch.equal(y, theirs(x))


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_is_the_published_formula(inverse: bool) -> None:
    """y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2) (inverse: times the root), in float64."""
    gdn = basic.GDN(6, inverse=inverse).double()
    _perturb(gdn, 4)
    x = torch.randn(2, 6, 5, 4, dtype=torch.float64)
    # The bounds are float32 buffers: sqrt(1e-6 + 2^-36) and 2^-18, rounded to float32.
    beta_bound = torch.tensor((1e-6 + 2**-36) ** 0.5, dtype=torch.float32).double()
    beta = torch.clamp(gdn.beta, min=beta_bound) ** 2 - 2**-36
    gamma = torch.clamp(gdn.gamma, min=2**-18) ** 2 - 2**-36
    assert (beta > 0.99e-6).all() and (gamma >= 0).all()
    norm = beta[None, :, None, None] + torch.einsum("ij,njhw->nihw", gamma, x**2)
    ref = x * norm.sqrt() if inverse else x / norm.sqrt()
    with torch.no_grad():
        torch.testing.assert_close(gdn(x), ref, rtol=1e-12, atol=1e-12)


def test_gdn_init_and_reparametrisation_constants() -> None:
    gdn = basic.GDN(4)
    sd = gdn.state_dict()
    assert sorted(sd) == sorted(
        [
            "beta",
            "gamma",
            "beta_reparam.pedestal",
            "beta_reparam.lower_bound.bound",
            "gamma_reparam.pedestal",
            "gamma_reparam.lower_bound.bound",
        ]
    )
    assert all(v.dtype == torch.float32 for v in sd.values())
    assert sd["beta_reparam.pedestal"].item() == sd["gamma_reparam.pedestal"].item() == 2.0**-36
    assert sd["gamma_reparam.lower_bound.bound"].item() == 2.0**-18
    assert sd["beta_reparam.lower_bound.bound"].item() == pytest.approx((1e-6 + 2**-36) ** 0.5)
    with torch.no_grad():
        # Starts as the identity-like normalization: beta = 1, gamma = 0.1 I.
        assert torch.allclose(gdn.beta_reparam(gdn.beta), torch.ones(4), atol=1e-6)
        assert torch.allclose(gdn.gamma_reparam(gdn.gamma), 0.1 * torch.eye(4), atol=1e-6)


def test_nonnegative_reparametrisation_gradient_can_lift_values_off_the_bound() -> None:
    """Below the bound, the gradient passes only where descent would raise the value."""
    param = basic.NonNegativeParametrizer()
    bound = param.lower_bound.bound.item()
    p = torch.tensor([-1.0, -1.0, 0.5, 0.5], requires_grad=True)
    out = param(p)
    assert torch.equal(out[:2], torch.full((2,), bound**2 - 2**-36))
    (out * torch.tensor([1.0, -1.0, 1.0, -1.0])).sum().backward()
    assert p.grad is not None
    expected = torch.tensor([0.0, -2 * bound, 1.0, -1.0])  # d/dp (p^2) = 2p above the bound
    assert torch.equal(p.grad, expected.float())


def test_gdn_gradient_through_the_bound_equals_compressai(cai: SimpleNamespace) -> None:
    ours, theirs = _pair(cai, "gdn", seed=9)
    for m in (ours, theirs):
        with torch.no_grad():
            m.gamma.fill_(-0.5)  # every entry clipped to the bound
            m.beta.fill_(-0.5)
    x = _input("gdn")
    grads = {}
    for sign in (1.0, -1.0):
        for m in (ours, theirs):
            m.zero_grad()
            (sign * m(x).square().sum()).backward()
        assert ours.gamma.grad is not None and ours.beta.grad is not None
        assert torch.equal(ours.gamma.grad, theirs.gamma.grad)
        assert torch.equal(ours.beta.grad, theirs.beta.grad)
        grads[sign] = (ours.gamma.grad.clone(), ours.beta.grad.clone())
    # Growing gamma and beta shrinks |y|, so minimizing |y|^2 pushes them up: the
    # gradient is negative and passes the bound (a plain max would give zeros) ...
    assert all((g < 0).all() for g in grads[1.0])
    # ... and maximizing it would push them further down: blocked at the bound.
    assert all(torch.equal(g, torch.zeros_like(g)) for g in grads[-1.0])


def _swap_for_compressai(module: nn.Module, cai: SimpleNamespace) -> int:
    """Replace every basic GDN / residual block by CompressAI's, weights loaded strictly."""
    swapped = 0
    for name, child in module.named_children():
        new: nn.Module | None = None
        if isinstance(child, basic.GDN):
            new = cai.layers.GDN(child.beta.numel(), inverse=child.inverse)
        elif isinstance(child, basic.ResidualBlock):
            new = cai.layers.ResidualBlock(child.conv1.in_channels, child.conv1.out_channels)
        elif isinstance(child, basic.ResidualBlockWithStride):
            c = child.conv1
            new = cai.layers.ResidualBlockWithStride(c.in_channels, c.out_channels, c.stride[0])
        elif isinstance(child, basic.ResidualBlockUpsample):
            c = child.conv
            r = child.subpel_conv[1].upscale_factor
            new = cai.layers.ResidualBlockUpsample(
                child.subpel_conv[0].in_channels, c.in_channels, r
            )
        if new is None:
            swapped += _swap_for_compressai(child, cai)
            continue
        new.load_state_dict(child.state_dict(), strict=True)
        if isinstance(child, basic.ResidualBlockWithStride):
            new.skip = child.skip  # TCM's subsampled skip: the same module on both sides
        setattr(module, name, new)
        swapped += 1
    return swapped


@pytest.mark.parametrize("name", ["wacnn-tiny", "tcm-tiny"])
def test_whole_model_bit_identical_with_compressai_layers(cai: SimpleNamespace, name: str) -> None:
    torch.manual_seed(0)
    ours = create_model(name).eval()
    gdns = [m for m in ours.modules() if isinstance(m, basic.GDN)]
    assert gdns
    for i, m in enumerate(gdns):
        _perturb(m, 11 + i)  # off their initial values, some entries at the bound
    ref = create_model(name).eval()
    ref.load_state_dict(ours.state_dict(), strict=True)
    assert _swap_for_compressai(ref, cai) > 0
    assert not any(isinstance(m, basic.GDN) for m in ref.modules())
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        # The transforms themselves (quantization would hide small differences downstream)
        y = ours.g_a(x)
        assert torch.equal(y, ref.g_a(x))
        assert torch.equal(ours.g_s(y), ref.g_s(y))
        a, b = ours(x), ref(x)
    assert torch.equal(a["x_hat"], b["x_hat"])
    for k in a["likelihoods"]:
        assert torch.equal(a["likelihoods"][k], b["likelihoods"][k]), k


def _compressai_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "compressai"]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "compressai":
                found.append(node.module)
            elif node.module == "licodec" and any(a.name == "_compressai" for a in node.names):
                found.append("licodec._compressai")
    return found


def test_no_module_imports_compressai() -> None:
    """Only the optional-extra shim (``licodec._compressai``, for tests and interop) does."""
    files = [f for f in PKG.rglob("*.py") if f.name != "_compressai.py"]
    assert len(files) > 40
    found = {str(f.relative_to(PKG)): _compressai_imports(f) for f in files}
    assert {k: v for k, v in found.items() if v} == {}


def _fresh_modules(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; return the compressai modules it left loaded."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env["PYTHONPATH"] = str(SRC)
    env["OMP_NUM_THREADS"] = "1"
    report = "import sys; print(sorted(m for m in sys.modules if m.split('.')[0] == 'compressai'))"
    proc = subprocess.run(
        [sys.executable, "-c", code + "\n" + report],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: Any = ast.literal_eval(proc.stdout.strip().splitlines()[-1])
    return list(result)


def test_importing_layers_imports_no_compressai() -> None:
    assert _fresh_modules("import licodec.layers") == []


def test_models_build_run_and_code_without_compressai() -> None:
    """No licodec module imports CompressAI: every tiny model builds, runs, compresses and
    decompresses in a fresh interpreter that never loads it."""
    code = """
import torch
import licodec.layers, licodec.models, licodec.models.wacnn, licodec.models.stf
import licodec.models.tcm, licodec.entropy
from licodec.models import create_model
for name in ("wacnn-tiny", "stf-tiny", "tcm-tiny"):
    model = create_model(name).eval()
    x = torch.rand(1, 3, 64, 64)
    assert model(x)["x_hat"].shape == (1, 3, 64, 64)
    model.update(force=True)
    enc = model.compress(x, reconstruct=True)
    assert torch.equal(model.decompress(**enc)["x_hat"], enc["x_hat"])
"""
    assert _fresh_modules(code) == []
