"""The weights that ship inside the package: index, files, default, and that they work."""

from __future__ import annotations

import json
from pathlib import Path

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
    by_arch: dict[tuple[str, int], list[dict]] = {}
    for e in items:
        by_arch.setdefault((e["arch"], e["version"]), []).append(e)
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


DATA = Path(__file__).parent / "data"


def test_a_file_made_with_the_v4_weights_still_decodes() -> None:
    # Released weights are frozen: this file was written (format 2) with wacnn-lite v4, the
    # shipped default of 2026-12-02, by the code at d115fe4 (photo(48, 64, 7), quality 3); it
    # must decode after any later reship. (.gitignore lets tests/data/*.lic be committed.)
    from licodec import Codec
    from licodec.codec.container import parse

    data = (DATA / "wacnn-lite-v4.lic").read_bytes()
    c = parse(data)
    assert (c.model_id, c.weights_digest.hex(), c.version) == ("wacnn-lite", "d4d4a7a783c272ea", 2)
    decoded = np.asarray(Codec().decompress(data), dtype=int)
    ref = np.asarray(Image.open(DATA / "wacnn-lite-v4.png"), dtype=int)
    # Latents are exact (the decode checksum passed); float32 synthesis on another CPU may
    # move a few samples by one grey level (docs/format.md).
    assert decoded.shape == ref.shape and np.abs(decoded - ref).max() <= 1
    assert (decoded != ref).mean() < 1e-3


def test_retired_versions_are_where_the_index_says(tmp_path: Path) -> None:
    import subprocess

    from licodec.zoo.weights import read_config

    root = Path(__file__).parents[1]
    retired = json.loads(INDEX.read_text()).get("retired", [])
    shipped = {e["digest"] for e in _index()}
    assert retired, "the index lists no retired versions"
    for r in retired:
        assert r["digest"] not in shipped
        path = f"src/licodec/zoo/weights/{r['file']}"
        got = subprocess.run(
            ["git", "-C", str(root), "show", f"{r['commit']}:{path}"],
            capture_output=True,
            check=False,
        )
        if got.returncode != 0:
            pytest.skip(f"no git history here to read {r['commit']} from")
        tmp = tmp_path / f"v{r['version']}.safetensors"
        tmp.write_bytes(got.stdout)
        config = read_config(tmp)
        assert (config["arch"], config["digest"]) == (r["arch"], r["digest"]), r
