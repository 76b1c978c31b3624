"""Decoded pixels do not depend on the thread count (the shipped model, 8 images x 6 rates)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from codec_helpers import photo

from licodec.zoo import pretrained

pytestmark = pytest.mark.skipif(
    not pretrained.entries(), reason="no weights ship with this checkout"
)

SIZES = [(96, 128), (128, 96), (112, 160), (80, 144), (128, 128), (72, 200), (150, 110), (99, 131)]


@pytest.fixture
def threads():  # type: ignore[no-untyped-def]
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_decode_is_the_same_at_1_2_and_3_threads(threads) -> None:  # type: ignore[no-untyped-def]
    # Regression: 1x1 convolutions changed backend with the thread count, oneDNN's transposed
    # convolution blocked by it, and sigmoid/GELU split their scalar tails by it, so a few
    # samples per image came out one grey level apart (latents were exact).
    from licodec import Codec

    entry = pretrained.default_entry()
    qualities = sorted(e.quality for e in pretrained.model_entries(entry.tag))
    assert len(qualities) == 6
    model = Codec(entry.arch).load().module  # loaded once; the rate is the codec's quality
    differing = []
    for q in qualities:
        codec = Codec(model, q)
        for i, (h, w) in enumerate(SIZES):
            img = photo(h, w, seed=20 + i)
            threads(2)
            res = codec.encode(img, keep_reconstruction=True)
            ref = np.asarray(res.reconstruction)
            for n in (1, 3):
                threads(n)
                if not np.array_equal(np.asarray(codec.decode(res.data)), ref):
                    differing.append((i, q, n))
    assert not differing, f"(image, quality, threads) whose decode differs: {differing}"


# -- the rerouted ops themselves (no weights needed) ------------------------------------------


def _ops() -> dict[str, object]:
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 48, 37, 29, generator=g)
    w1 = torch.randn(64, 48, 1, 1, generator=g) / 7
    wt = torch.randn(48, 24, 5, 5, generator=g) / 17
    b = torch.randn(24, generator=g)
    # many channels on few pixels: F.conv2d takes THNN's slow_conv2d, whose sums follow
    # the thread count on AVX-512 (the sub-pixel form of wacnn-lite's first deconvolution)
    xs = torch.randn(1, 128, 8, 12, generator=g)
    w3 = torch.randn(128, 128, 3, 3, generator=g) / 34
    wd = torch.randn(128, 32, 5, 5, generator=g) / 57
    big = torch.randn(3 * 16384 + 123, generator=g) * 4
    return {
        "conv1x1": lambda: F.conv2d(x, w1),
        "conv3x3 few pixels": lambda: F.conv2d(xs, w3, padding=1),
        "conv3x3 s2": lambda: F.conv2d(x, w3[:64, :48], stride=2, padding=1),
        "deconv5x5s2": lambda: F.conv_transpose2d(x, wt, b, stride=2, padding=2, output_padding=1),
        "deconv5x5s2 few pixels": lambda: F.conv_transpose2d(
            xs, wd, None, stride=2, padding=2, output_padding=1
        ),
        "gelu": lambda: F.gelu(big),
        "sigmoid": lambda: torch.sigmoid(big),
        "Tensor.sigmoid": lambda: big.sigmoid(),
    }


def test_rerouted_ops_equal_the_plain_ones() -> None:
    from licodec.layers.deterministic import ThreadInvariant

    for name, op in _ops().items():
        plain = op()  # type: ignore[operator]
        with ThreadInvariant():
            ours = op()  # type: ignore[operator]
        assert ours.shape == plain.shape, name
        torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-5, msg=name)


def test_rerouted_ops_give_the_same_bits_at_any_thread_count(threads) -> None:  # type: ignore[no-untyped-def]
    from licodec.layers.deterministic import ThreadInvariant

    for name, op in _ops().items():
        results = []
        for n in (1, 2, 4):
            threads(n)
            with ThreadInvariant():
                results.append(op())  # type: ignore[operator]
        assert all(torch.equal(results[0], r) for r in results[1:]), name


def test_subpixel_weight_is_the_transposed_convolution() -> None:
    import torch.nn.functional as F

    from licodec.layers.deterministic import subpixel_weight

    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, 6, 7, dtype=torch.float64, generator=g)
    w = torch.randn(5, 3, 5, 5, dtype=torch.float64, generator=g)
    b = torch.randn(3, dtype=torch.float64, generator=g)
    ref = F.conv_transpose2d(x, w, b, stride=2, padding=2, output_padding=1)
    k, kb = subpixel_weight(w, b)
    assert k.shape == (12, 5, 3, 3)
    got = F.pixel_shuffle(F.conv2d(x, k, kb, padding=1), 2)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)


def test_other_ops_pass_through() -> None:
    import torch.nn.functional as F

    from licodec.layers.deterministic import ThreadInvariant

    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 4, 9, 9, generator=g)
    w = torch.randn(4, 4, 3, 3, generator=g)
    with ThreadInvariant():
        y = F.layer_norm(x, (9,))  # not rerouted
        d = F.conv2d(x.double(), w.double())  # nor anything that is not float32
    assert torch.equal(y, F.layer_norm(x, (9,))) and d.dtype == torch.float64
