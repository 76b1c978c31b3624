"""Model contract for every registered architecture (tiny configs), sizes and layout facts."""

from __future__ import annotations

import pytest
import torch
from conftest import smooth_image

from licodec.models import create_model, get_spec, list_models

TINY = [n for n in list_models() if n.endswith("-tiny")]
FAMILIES = {n.split("-")[0] for n in list_models()}

# Parameter counts of the authors' code (ARCHITECTURE.md section 8).
PUBLISHED_PARAMS = {
    "wacnn": 75_235_779,
    "stf": 99_855_639,
    "tcm-s": 45_180_752,
    "tcm-m": 59_133_650,
    "tcm-l": 76_568_148,
    "elic": 32_074_200,  # no official count: CompressAI 1.2.8's Elic2022Official (the oracle)
}


def test_every_family_has_a_tiny_config() -> None:
    assert {n.split("-")[0] for n in TINY} == FAMILIES == {"wacnn", "stf", "tcm", "elic"}


#: Every registered model but the full-size ones (timm's habit: tests over the registry).
SMALL = [n for n in list_models() if n not in PUBLISHED_PARAMS]


@pytest.fixture(scope="module", params=SMALL)
def tiny(request: pytest.FixtureRequest) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model(request.param).eval()
    model.update(force=True)
    return model


def _rate(model: torch.nn.Module) -> dict[str, int]:
    """A middle operating point for a variable-rate model (none for a fixed-rate one)."""
    return {"rate": 2} if getattr(model, "num_rates", 0) else {}


@pytest.mark.parametrize("size", [(1, 1), (37, 53), (130, 257), (70, 300)])
def test_forward_shapes_and_exact_round_trip(tiny: torch.nn.Module, size: tuple[int, int]) -> None:
    x = smooth_image(*size, seed=size[0])
    r = _rate(tiny)
    with torch.no_grad():
        out = tiny(x, **r)
    assert out["x_hat"].shape == x.shape
    yh, yw = tiny.latent_size(size)
    assert out["likelihoods"]["y"].shape == (1, tiny.M, yh, yw)
    assert out["likelihoods"]["z"].shape[-2:] == (yh // 4, yw // 4)
    for lik in out["likelihoods"].values():
        assert lik.min() > 0 and lik.max() <= 1
    enc = tiny.compress(x, **r)
    assert enc["size"] == size
    dec = tiny.decompress(enc["strings"], enc["shape"], enc["size"], **r)
    assert dec["x_hat"].shape == x.shape
    # The decoder reproduces the encoder's reconstruction bit for bit.
    assert torch.equal(dec["x_hat"], out["x_hat"].clamp(0, 1))
    assert dec["latent_crc"] == enc["latent_crc"]


@pytest.mark.parametrize("size", [(1, 1), (37, 53), (130, 257)])
def test_portable_round_trip_is_exact(tiny: torch.nn.Module, size: tuple[int, int]) -> None:
    """float64 entropy parameters: forward, compress and decompress still agree exactly."""
    x = smooth_image(*size, seed=size[1])
    r = _rate(tiny)
    with torch.no_grad():
        out = tiny(x, portable=True, **r)
        plain = tiny(x, **r)["x_hat"]
    enc = tiny.compress(x, portable=True, reconstruct=True, **r)
    dec = tiny.decompress(enc["strings"], enc["shape"], enc["size"], portable=True, **r)
    assert torch.equal(dec["x_hat"], out["x_hat"].clamp(0, 1))
    assert torch.equal(enc["x_hat"], dec["x_hat"])  # the encoder's own reconstruction
    assert dec["latent_crc"] == enc["latent_crc"]
    assert out["likelihoods"]["y"].dtype == torch.float32
    # Same model, other precision of the entropy parameters: close, not identical bits
    assert (out["x_hat"] - plain).abs().max() < 0.05
    # Decoding with other arithmetic (here: the float32 mode) either reproduces the
    # latents, and then the image up to rounding, or the latent checksum says it did not.
    other = tiny.decompress(enc["strings"], enc["shape"], enc["size"], portable=False, **r)
    if other["latent_crc"] == enc["latent_crc"]:
        assert (other["x_hat"] - dec["x_hat"]).abs().max() < 0.01


def test_decompress_checks_the_encoders_latent_crc() -> None:
    model = create_model("tcm-tiny").eval()
    model.update(force=True)
    x = smooth_image(30, 70, 4)
    enc = model.compress(x)
    with torch.no_grad():
        ref = model(x)["x_hat"].clamp(0, 1)
    assert torch.equal(model.decompress(**enc)["x_hat"], ref)
    enc["latent_crc"] ^= 1
    with pytest.raises(ValueError, match="latent_crc mismatch"):
        model.decompress(**enc)


def test_decompress_takes_what_compress_returned() -> None:
    model = create_model("wacnn-tiny").eval()
    model.update(force=True)
    x = smooth_image(50, 40, 7)
    for portable in (False, True):
        enc = model.compress(x, portable=portable, reconstruct=True)
        assert enc["portable"] is portable
        assert torch.equal(model.decompress(**enc)["x_hat"], enc["x_hat"])


def test_portable_entropy_parameters_are_float64_throughout() -> None:
    """Also the rate gain on z_hat: float32 exp differs between CPU kernels."""
    torch.manual_seed(0)
    model = create_model("wacnn-tiny", num_rates=3).eval()
    with torch.no_grad():
        model.inv_gain_z.normal_()
    model.update(force=True)
    z_hat = torch.randn(1, model.entropy_bottleneck.channels, 2, 3).round()
    nets = model._nets(True)
    g = model._gains(2, 1)
    means, _ = model._hyper_params(z_hat, g, nets)
    assert means.dtype == torch.float64
    scaled = z_hat.double() * torch.exp(model.inv_gain_z[2].double())[None, :, None, None]
    assert torch.equal(means, nets.h_mean_s(scaled))


def test_likelihoods_keep_float32_under_autocast() -> None:
    model = create_model("wacnn-tiny").train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(smooth_image(64, 64, 1))
    assert out["likelihoods"]["y"].dtype == torch.float32
    assert out["likelihoods"]["y"].min() > 0


def test_portable_cache_after_loading_and_under_inference_mode() -> None:
    torch.manual_seed(0)
    a = create_model("wacnn-tiny").eval()
    torch.manual_seed(1)
    b = create_model("wacnn-tiny").eval()
    x = smooth_image(40, 40, 2)
    with torch.inference_mode():
        a(x, portable=True)  # builds the float64 copy inside inference mode
    with torch.no_grad():
        ref_b = b(x, portable=True)["x_hat"]
        a.load_state_dict(b.state_dict())
        assert torch.equal(a(x, portable=True)["x_hat"], ref_b)
        with torch.no_grad():  # .data writes do not bump versions; the explicit reset does
            a.h_mean_s[0].bias.data.add_(1.0)
        a.clear_portable_cache()
        assert not torch.equal(a(x, portable=True)["x_hat"], ref_b)
    out = a(x, portable=True)  # grad mode: the copy is not an inference tensor
    assert out["x_hat"].requires_grad
    import copy

    assert "_portable_nets" not in copy.deepcopy(a).__dict__


def test_portable_copy_follows_the_weights() -> None:
    model = create_model("wacnn-tiny").eval()
    model.update(force=True)
    x = smooth_image(40, 40, 5)
    with torch.no_grad():
        a = model(x, portable=True)["x_hat"]
        model.h_mean_s[0].bias.add_(0.3)  # any in-place change: the float64 copy is rebuilt
        b = model(x, portable=True)["x_hat"]
        c = model(x)["x_hat"]
    assert not torch.equal(a, b)
    assert (b - c).abs().max() < 0.05
    model.train()
    with pytest.raises(ValueError, match="eval"):
        model(x, portable=True)


def test_batch_of_two_round_trip() -> None:
    model = create_model("tcm-tiny").eval()
    model.update(force=True)
    x = torch.cat([smooth_image(40, 60, 1), smooth_image(40, 60, 2)])
    with torch.no_grad():
        ref = model(x)["x_hat"].clamp(0, 1)
    enc = model.compress(x)
    assert len(enc["strings"][0]) == 1 and len(enc["strings"][1]) == 2
    dec = model.decompress(enc["strings"], enc["shape"], enc["size"])
    assert torch.allclose(dec["x_hat"], ref, atol=1e-5)


def test_compress_without_update_is_a_clear_error() -> None:
    model = create_model("tcm-tiny").eval()
    with pytest.raises(RuntimeError, match="update"):
        model.compress(smooth_image(16, 16))


@pytest.mark.parametrize("name", TINY)
def test_training_mode_backpropagates_to_every_parameter(name: str) -> None:
    model = create_model(name).train()
    out = model(smooth_image(64, 64))
    bits = sum(-torch.log2(v).sum() for v in out["likelihoods"].values())
    loss = bits + 1000 * torch.mean((out["x_hat"] - 0.5) ** 2)
    loss.backward()
    no_grad = [
        n for n, p in model.named_parameters() if p.grad is None and not n.endswith("quantiles")
    ]
    assert no_grad == []


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_full_size_parameter_counts_match_the_authors(name: str) -> None:
    model = create_model(name)
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - PUBLISHED_PARAMS[name]) / PUBLISHED_PARAMS[name] < 1e-3
    assert model.pad_multiple == (128 if name.startswith("tcm") else 64)


def test_elic_matches_compressai_elic2022official() -> None:
    """The oracle: CompressAI's ELIC state_dict loads (strictly, through the registry's
    filter) into ours; forward outputs agree to float rounding, the likelihoods (the rate)
    exactly, and both coders' real files are within a stream's overhead of each other."""
    pytest.importorskip("compressai")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from compressai.models.sensetime import Elic2022Official

    from licodec.zoo.checkpoint import load_authors_state_dict

    torch.manual_seed(0)
    ref = Elic2022Official().eval()
    quantiles = ref.latent_codec["hyper"].entropy_bottleneck.quantiles
    with torch.no_grad():  # away from their initial values, like a trained model's
        quantiles.add_(torch.randn_like(quantiles))
    ref.update(force=True)
    ours = load_authors_state_dict(create_model("elic"), ref.state_dict())
    x = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 4 * 192, 4 * 256), 4)
    with torch.no_grad():
        a, b = ref(x), ours(x)
        coded_ref = ref.compress(x)
    assert (a["x_hat"] - b["x_hat"]).abs().max() < 1e-4
    for k in ("y", "z"):
        assert torch.allclose(a["likelihoods"][k], b["likelihoods"][k], rtol=1e-5, atol=0)
    bits = [sum(float(-torch.log2(v).sum()) for v in o["likelihoods"].values()) for o in (a, b)]
    assert abs(bits[1] - bits[0]) <= 1e-3 * bits[0]
    coded = ours.compress(x, reconstruct=True)
    ours_bytes = sum(len(s) for ss in coded["strings"] for s in ss)
    ref_bytes = sum(len(s) for ss in coded_ref["strings"] for s in ss)
    # CompressAI writes 11 streams (z, then two checkerboard halves of five groups), we two
    assert ref_bytes - 11 * 8 <= ours_bytes <= ref_bytes, (ours_bytes, ref_bytes)
    dec = ours.decompress(**coded)
    assert torch.equal(dec["x_hat"], coded["x_hat"])
    with torch.no_grad():
        theirs = ref.decompress(coded_ref["strings"], coded_ref["shape"])["x_hat"].clamp(0, 1)
    assert (theirs - dec["x_hat"]).abs().max() < 1e-4  # the same latents, decoded by each


def test_elic_non_anchors_see_only_anchors() -> None:
    """The checkerboard: the parameters of a group's second half depend on its anchors and
    on no other non-anchor (they are decoded together), and the anchors see no spatial
    context (the first pass gives none)."""
    from licodec.entropy.channel_ar import checkerboard

    torch.manual_seed(0)
    model = create_model("elic-tiny").eval()
    nets = model._nets(False)
    ctx = model._group_context(0, (torch.randn(1, 32, 8, 8),), [], nets)
    anchors = checkerboard(8, 8)
    first = torch.where(anchors, torch.randn(1, 4, 8, 8).round(), torch.zeros(1, 4, 8, 8))
    mu, sigma = model._group_params(0, ctx, first, nets)
    other = first.clone()
    other[..., 3, 4] += 3  # a non-anchor (row + col odd)
    mu2, sigma2 = model._group_params(0, ctx, other, nets)
    assert torch.equal(mu[..., ~anchors], mu2[..., ~anchors])
    assert torch.equal(sigma[..., ~anchors], sigma2[..., ~anchors])
    moved = first.clone()
    moved[..., 3, 3] += 3  # an anchor: its non-anchor neighbours see it
    mu3, _ = model._group_params(0, ctx, moved, nets)
    assert not torch.equal(mu[..., 3, 2], mu3[..., 3, 2])
    assert torch.equal(mu[..., 0, 7], mu3[..., 0, 7])  # out of the 5x5 reach


def test_lite_models_are_registered_and_documented() -> None:
    for name in ("wacnn-lite", "stf-lite", "tcm-lite", "elic-lite"):
        spec = get_spec(name)
        assert spec.description
        model = create_model(name)
        n = sum(p.numel() for p in model.parameters())
        assert 1e6 < n < 10e6


def test_unknown_model_lists_known_ones() -> None:
    with pytest.raises(KeyError, match="known models: .*stf"):
        create_model("nope")


def test_scale_indexes_equal_compressai_build_indexes() -> None:
    model = create_model("tcm-tiny").eval()
    model.update(force=True)
    table = model.gaussian_conditional.scale_table
    sigma = torch.cat(
        [
            torch.rand(5000) * 300,
            table,
            table * (1 + 1e-7),
            table * (1 - 1e-7),
            torch.tensor([0.0, -1.0]),
        ]
    )
    ours = model.scale_indexes(sigma)
    assert torch.equal(ours, model.gaussian_conditional.build_indexes(sigma))


def test_tcm_strided_skip_is_the_plain_strided_pointwise_conv() -> None:
    """TCM's skip convs are computed as subsample-then-1x1; the function and grads must not change."""
    block = create_model("tcm-tiny").g_a[0]
    skip = block.skip
    assert set(dict(skip.named_parameters())) == {"weight", "bias"}  # authors' key names
    x = torch.rand(2, 3, 37, 54, requires_grad=True)
    ref_x = x.detach().clone().requires_grad_()
    out = skip(x)
    ref = torch.nn.functional.conv2d(ref_x, skip.weight, skip.bias, stride=2)
    torch.testing.assert_close(out, ref)
    out.square().sum().backward()
    weight_grad = skip.weight.grad.clone()
    skip.weight.grad = None
    ref.square().sum().backward()
    torch.testing.assert_close(x.grad, ref_x.grad)
    torch.testing.assert_close(weight_grad, skip.weight.grad)


def test_tcm_backward_in_channels_last_does_not_corrupt_memory() -> None:
    """torch 2.14's NHWC weight-grad kernel for a strided 1x1 conv on 3 channels corrupts the
    heap (at 4x128x128 it segfaults); TCM's first block must not reach it. Own process."""
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from licodec.models import create_model\n"
        "torch.set_num_threads(1)\n"
        "block = create_model('tcm-tiny').g_a[0].to(memory_format=torch.channels_last)\n"
        "for _ in range(4):\n"
        "    x = torch.rand(4, 3, 128, 128).contiguous(memory_format=torch.channels_last)\n"
        "    block(x).square().mean().backward()\n"
        "print('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-500:]
    assert proc.stdout.strip() == "ok"


def test_the_registry_imports_no_model() -> None:
    """Families register themselves when licodec.models is imported; the registry does not
    reach for them (no import cycle, no torch for code that only names models)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from licodec.zoo import registry\n"
        "assert registry.list_models() == [], registry.list_models()\n"
        "assert 'licodec.models' not in sys.modules and 'torch' not in sys.modules\n"
        "try:\n"
        "    registry.get_spec('stf')\n"
        "except KeyError as e:\n"
        "    assert 'import licodec.models' in str(e), e\n"
        "from licodec.models import list_models\n"
        "assert 'stf' in list_models()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_every_registered_model_follows_the_contract() -> None:
    from licodec.entropy.contract import CodecModel, Coded, codec_model
    from licodec.errors import ModelError

    for name in SMALL:
        model = create_model(name)
        assert isinstance(model, CodecModel), name
        assert model.pads_for((37, 53)) == model.pads_for((37, 53))
        left, right, top, bottom = model.pads_for((37, 53))
        assert (37 + top + bottom) % model.pad_multiple == 0 and abs(left - right) <= 1
    with pytest.raises(ModelError, match="does not follow licodec's model contract .*arch"):
        codec_model(torch.nn.Conv2d(3, 3, 1))
    model = create_model("wacnn-tiny").eval()
    model.update(force=True)
    coded = model.compress(smooth_image(20, 30), reconstruct=True)
    assert isinstance(coded, Coded)
    assert list(coded) == ["strings", "shape", "size", "latent_crc", "portable", "x_hat"]
    assert set(coded.streams()) == {"y", "z"} and coded.size == (20, 30)
    assert torch.equal(model.decompress(**coded)["x_hat"], coded.x_hat)
    with pytest.raises(KeyError):
        coded["nope"] = 1
