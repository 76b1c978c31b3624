"""The README's claims about the shipped model agree with its own tables."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _shipped_bd_row() -> dict[str, float]:
    """The BD-rate table's row for the shipped model: codec -> BD-rate in %."""
    lines = README.read_text(encoding="utf-8").splitlines()
    header = next(ln for ln in lines if ln.startswith("| model | vs "))
    codecs = [c.strip().removeprefix("vs ") for c in header.strip("|").split("|")[1:]]
    row = next(ln for ln in lines if ln.startswith("| `") and "shipped" in ln)
    values = [
        c.strip().strip("*").replace("−", "-").rstrip(" %") for c in row.strip("|").split("|")[1:]
    ]
    return {c: float(v) for c, v in zip(codecs, values)}


def test_every_codec_ahead_of_the_shipped_model_is_named() -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    claim = re.search(r"It beats JPEG at every one of its rates.{0,200}?still ahead", text)
    assert claim, "the README's summary sentence is gone"
    ahead = [c for c, v in _shipped_bd_row().items() if v > 0]  # they need fewer bits
    assert ahead, "the table puts no codec ahead"
    for codec in ahead:
        name = codec.replace(" 4:4:4", "")
        assert name in claim.group(0), f"{name} is ahead in the table but not in the sentence"
