"""The real bitstream costs what the likelihoods promise (on a briefly trained model)."""

from __future__ import annotations

import pytest
import torch
from conftest import smooth_image

from licodec.models import create_model


@pytest.fixture(scope="module")
def briefly_trained() -> torch.nn.Module:
    """A tiny model whose entropy model was fitted for 200 steps.

    A random network is no fair test: its scales are uncalibrated, so many
    symbols sit in the tails, where the likelihood floor and the coder's
    escape codes disagree. Here the analysis transform is frozen (with a gain
    so ``y`` carries thousands of bits) and the hyperprior and slice
    transforms are trained on the rate alone, which calibrates them quickly.
    """
    torch.manual_seed(0)
    model = create_model("wacnn-tiny").train()
    with torch.no_grad():
        model.g_a[7].weight.mul_(10)
    model.g_a.requires_grad_(False)
    main = [
        p for n, p in model.named_parameters() if p.requires_grad and not n.endswith("quantiles")
    ]
    aux = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    opt = torch.optim.Adam(main, lr=2e-3)
    aux_opt = torch.optim.Adam(aux, lr=5e-2)
    images = torch.cat([smooth_image(256, 256, seed=s) for s in range(8)])
    g = torch.Generator().manual_seed(1)
    first = last = 0.0
    for _step in range(200):
        idx = torch.randint(0, 8, (8,), generator=g)
        oy, ox = torch.randint(0, 192, (2,), generator=g).tolist()
        out = model(images[idx, :, oy : oy + 64, ox : ox + 64])
        bpp = sum(-torch.log2(v).sum() for v in out["likelihoods"].values()) / (8 * 64 * 64)
        opt.zero_grad()
        bpp.backward()
        opt.step()
        aux_opt.zero_grad()
        model.aux_loss().backward()
        aux_opt.step()
        first = first or float(bpp.detach())
        last = float(bpp.detach())
    model.eval().update(force=True)
    model.rate_drop = (first, last)  # type: ignore[assignment]
    return model


def test_real_bits_match_the_likelihood_estimate(briefly_trained: torch.nn.Module) -> None:
    model = briefly_trained
    first, last = model.rate_drop  # type: ignore[misc]
    assert last < 0.5 * first  # the fit did something
    x = smooth_image(256, 384, seed=11)  # not a training image
    with torch.no_grad():
        out = model(x)
    est = sum(float(-torch.log2(v).sum()) for v in out["likelihoods"].values())
    enc = model.compress(x)
    real = 8 * (len(enc["strings"][0][0]) + sum(len(s) for s in enc["strings"][1]))
    assert est > 3000, "too few bits for a meaningful comparison"
    assert abs(real - est) / est < 0.02, (real, est)
