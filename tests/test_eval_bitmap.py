"""`licodec bitmap`: a per-pixel map of the likelihood bits that sums to their total."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from eval_helpers import smooth_image, tiny_weights
from PIL import Image

from licodec.cli.main import main
from licodec.eval.bitmap import cell_density, likelihood_map


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_weights(tmp_path_factory.mktemp("bitmap") / "w.safetensors", 12, 1)


def _likelihood_bits(model: Any, rgb: np.ndarray) -> tuple[float, float]:
    x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        lik = model(x)["likelihoods"]
    return tuple(float((-torch.log2(lik[k].double())).sum()) for k in ("y", "z"))  # type: ignore[return-value]


def test_bitmap_cli_map_sums_to_the_likelihood_total(
    tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from licodec.zoo.weights import load_weights

    rgb = smooth_image(100, 150, seed=2)  # not a multiple of 64: padded cells are folded in
    image = tmp_path / "im.png"
    Image.fromarray(rgb).save(image)
    model, _ = load_weights(weights)
    y_bits, z_bits = _likelihood_bits(model, rgb)

    for z_mode, expected in (("spread", y_bits + z_bits), ("separate", y_bits)):
        fig, raw = tmp_path / f"{z_mode}.png", tmp_path / f"{z_mode}.npy"
        rc = main(
            [
                "bitmap",
                str(image),
                "--weights",
                str(weights),
                "--z",
                z_mode,
                "-o",
                str(fig),
                "--save-map",
                str(raw),
                "--threads",
                "1",
            ]
        )
        out, err = capsys.readouterr()
        assert rc == 0, err
        with Image.open(fig) as im:
            assert im.format == "PNG" and im.width > 400
        density = np.load(raw)
        assert density.shape == (100, 150) and (density > 0).all()
        assert density.sum() == pytest.approx(expected, rel=1e-9)
        assert f"{(y_bits + z_bits) / 15000:.4f} bpp" in out

    rc = main(
        [
            "bitmap",
            str(image),
            "--weights",
            str(weights),
            "--layout",
            "overlay",
            "-o",
            str(tmp_path / "o.png"),
            "--threads",
            "1",
        ]
    )
    assert rc == 0 and (tmp_path / "o.png").stat().st_size > 10_000


def test_tiled_map_sums_to_the_tiles_likelihoods(weights: Path) -> None:
    from licodec.codec.tiling import plan_tiles, tile_rects
    from licodec.zoo.weights import load_weights

    model, _ = load_weights(weights)
    rgb = smooth_image(100, 150, seed=4)
    bm = likelihood_map(model, rgb, tile_size=64)
    rects = tile_rects(150, 100, plan_tiles(150, 100, 64, model.pad_multiple))
    assert bm.tiles == len(rects) == 6
    total = sum(sum(_likelihood_bits(model, rgb[y : y + h, x : x + w])) for x, y, w, h in rects)
    assert bm.map().sum() == pytest.approx(total, rel=1e-9)
    assert bm.total_bits == pytest.approx(total, rel=1e-9)


class _OneHotCost(torch.nn.Module):
    """Stand-in model: every latent cell costs 1 bit except one that costs 9."""

    pad_multiple = 64

    def __init__(self, hot: tuple[int, int]) -> None:
        super().__init__()
        self.hot = hot

    def pads_for(self, size: tuple[int, int]) -> tuple[int, int, int, int]:
        dh, dw = (-size[0]) % 64, (-size[1]) % 64
        return (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2)

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        h, w = x.shape[-2:]
        hy, wy = (h + (-h) % 64) // 16, (w + (-w) % 64) // 16
        y = torch.full((1, 2, hy, wy), 0.5**0.5)  # 2 channels x 0.5 bit
        y[0, :, self.hot[0], self.hot[1]] = 2.0**-4.5
        z = torch.full((1, 1, hy // 4, wy // 4), 0.5)
        return {"x_hat": x, "likelihoods": {"y": y, "z": z}}


def test_bits_land_on_the_pixels_their_latent_covers() -> None:
    # 40x70 pads to 64x128: 12 rows above, 12 below; 29 columns left, 29 right.
    bm = likelihood_map(_OneHotCost((1, 2)), np.zeros((40, 70, 3), np.uint8))
    density = bm.map(include_z=False)
    # Cell (1, 2) covers padded rows 16..31 and columns 32..47 -> image rows 4..19, cols 3..18.
    assert density[4:20, 3:19] == pytest.approx(np.full((16, 19 - 3), 9 / 256))
    assert density.sum() == pytest.approx(bm.y_bits)
    assert bm.y_bits == pytest.approx(4 * 8 - 1 + 9)
    assert bm.z_bits == pytest.approx(2.0)
    assert bm.map().sum() == pytest.approx(bm.y_bits + 2.0)


def test_cell_density_folds_padding_cells_into_the_image() -> None:
    bits = np.arange(9, dtype=float).reshape(3, 3)
    # 2x2 image inside a 12x12 padded input (stride 4): only cell (1, 1) overlaps it.
    d = cell_density(bits, (2, 2), (5, 5, 5, 5), 4)
    assert d == pytest.approx(np.full((2, 2), bits.sum() / 4))
    # 6x6 image, 1 px of padding each side, 2x2 cells of 4: areas 3x3 per cell.
    bits = np.array([[9.0, 18.0], [27.0, 36.0]])
    d = cell_density(bits, (6, 6), (1, 1, 1, 1), 4)
    assert d[:3, :3] == pytest.approx(np.ones((3, 3)))
    assert d[3:, 3:] == pytest.approx(np.full((3, 3), 4.0))
    assert d.sum() == pytest.approx(bits.sum())


_ZOO_INDEX = Path(__file__).resolve().parents[1] / "src/licodec/zoo/weights/index.json"


@pytest.mark.skipif(not _ZOO_INDEX.is_file(), reason="no weights ship with this checkout")
def test_bitmap_without_model_uses_the_shipped_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from licodec.zoo.pretrained import default_entry

    image = tmp_path / "im.png"
    Image.fromarray(smooth_image(64, 64, seed=2)).save(image)
    rc = main(["bitmap", str(image), "-o", str(tmp_path / "m.png"), "--threads", "1"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert (tmp_path / "m.png").is_file() and "estimated" in out
    entry = default_entry()
    from licodec.eval.evaluate import default_points

    (point,) = default_points(None)
    assert (point.arch, point.quality) == (entry.arch, entry.quality)


def test_bitmap_bad_inputs(
    tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "im.png"
    Image.fromarray(smooth_image(32, 32, seed=0)).save(image)
    png = str(tmp_path / "m.png")
    cases = [
        ([str(image), "--model", "nope", "-o", png], 5, "unknown model"),
        (
            [str(tmp_path / "no.png"), "--weights", str(weights), "-o", png],
            3,
            "no.png: no such file",
        ),
        ([str(image), "--weights", str(weights), "-o", str(tmp_path / "m.jpg")], 3, ".png"),
        ([str(image), "--weights", str(weights), "--save-map", "m.txt", "-o", png], 3, ".npy"),
        ([str(image), "--weights", str(tmp_path / "w.st"), "-o", png], 5, "not found"),
        ([str(image), "--weights", str(weights), "--quality", "7", "-o", png], 3, "--quality"),
    ]
    for argv, code, text in cases:
        rc = main(["bitmap", *argv])
        err = capsys.readouterr().err
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        assert rc == code, (argv, err)
        assert len(lines) == 1 and lines[0].startswith("licodec: error: "), (argv, err)
        assert text in lines[0], (argv, err)
    assert not Path(png).exists()
