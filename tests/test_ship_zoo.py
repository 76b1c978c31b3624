"""tools/ship_zoo.py: released weights are frozen (issue 13, item 4)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from licodec.models import create_model
from licodec.zoo.weights import save_weights

TOOL = Path(__file__).resolve().parents[1] / "tools" / "ship_zoo.py"


def _ship_zoo():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("ship_zoo", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("where", ["on disk", "in the index"])
def test_a_released_file_is_never_replaced(tmp_path: Path, where: str) -> None:
    weights = save_weights(create_model("wacnn-tiny").eval(), tmp_path / "new.safetensors")
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    released = zoo / "wacnn-tiny.safetensors"
    if where == "on disk":
        released.write_bytes(b"the released file")
        index = {"weights": []}
    else:
        index = {"weights": [{"file": "wacnn-tiny.safetensors", "arch": "wacnn-tiny"}]}
    (zoo / "index.json").write_text(json.dumps(index))
    before = sorted(p.name for p in zoo.iterdir())
    argv = [
        str(weights),
        "--file",
        "wacnn-tiny.safetensors",
        "--eval",
        str(tmp_path / "e.json"),
        "--hardware",
        "test",
        "--hours",
        "0",
        "--zoo",
        str(zoo),
    ]
    with pytest.raises(SystemExit, match="released weights are frozen: ship these as a new --file"):
        _ship_zoo().main(argv)
    assert sorted(p.name for p in zoo.iterdir()) == before  # nothing staged or written
    assert json.loads((zoo / "index.json").read_text()) == index
    if where == "on disk":
        assert released.read_bytes() == b"the released file"
