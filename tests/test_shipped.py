"""The weights that ship inside the package: index, files, default, and that they work."""

from __future__ import annotations

import json

import numpy as np
import pytest
from codec_helpers import one_thread, photo  # noqa: F401
from PIL import Image

from licodec.zoo import pretrained

ZOO = pretrained._weights_dir()
INDEX = ZOO / "index.json"
pytestmark = pytest.mark.skipif(not INDEX.is_file(), reason="no weights ship with this checkout")


def _index() -> list[dict]:
    return json.loads(INDEX.read_text())["weights"]


def test_index_entries_describe_their_files() -> None:
    from licodec.zoo.weights import read_config

    items = _index()
    assert sum(1 for e in items if e.get("default")) == 1
    files = {e["file"] for e in items}
    total = sum((ZOO / f).stat().st_size for f in files)
    assert total < 40e6, f"shipped weights take {total / 1e6:.1f} MB"
    for e in items:
        config = read_config(ZOO / e["file"])
        assert config["arch"] == e["arch"] and config["digest"] == e["digest"], e["name"]
        for key in ("quality", "lambda", "metric", "steps", "data", "kodak", "training"):
            assert e.get(key) not in (None, "", {}), f"{e['name']} has no {key}"
        assert 0.05 < e["kodak"]["bpp"] < 2.0 and 20 < e["kodak"]["psnr"] < 45
    by_arch: dict[str, list[dict]] = {}
    for e in items:
        by_arch.setdefault(e["arch"], []).append(e)
    for arch, es in by_arch.items():
        es.sort(key=lambda e: e["quality"])
        bpps = [e["kodak"]["bpp"] for e in es]
        psnrs = [e["kodak"]["psnr"] for e in es]
        assert bpps == sorted(bpps) and psnrs == sorted(psnrs), f"{arch}: not monotone"


def test_default_round_trips_a_photo_exactly() -> None:
    from licodec import Codec
    from licodec.cli.demo import test_picture

    entry = pretrained.default_entry()
    img = test_picture(384, 256)  # the demo's generated picture: smooth regions and edges
    codec = Codec()
    res = codec.encode(img, keep_reconstruction=True)
    assert res.model == entry.arch
    decoded = codec.decode(res.data)
    assert np.array_equal(np.asarray(decoded), np.asarray(res.reconstruction))
    # a trained model, not a random one (which gives about 5 dB here)
    assert res.psnr > 27 and 0.05 < res.bpp < 1.5, (res.psnr, res.bpp)


def test_qualities_order_the_rate_on_a_photo() -> None:
    from licodec import Codec

    entry = pretrained.default_entry()
    qs = sorted(e["quality"] for e in _index() if e["arch"] == entry.arch)
    img = Image.fromarray(photo(128, 192, 5))
    sizes = [len(Codec(model=entry.arch, quality=q).compress(img)) for q in (qs[0], qs[-1])]
    assert sizes[0] < sizes[1]
