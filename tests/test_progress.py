"""Progress bars: lines printed while a bar is shown, the tile bar's numbers, training output."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from licodec.cli.support import LazyBar, for_each_file

REPO = Path(__file__).resolve().parents[1]


class _Terminal(io.StringIO):
    """A stderr that claims to be a terminal, so tqdm draws its bars into it."""

    def isatty(self) -> bool:
        return True


def _rows(text: str) -> list[str]:
    """What a terminal shows on each row: the text after the last carriage return."""
    return [row.rsplit("\r", 1)[-1] for row in text.split("\n")]


def test_lines_printed_during_a_file_bar_start_their_own_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)

    def one(inp: str, out: str, show_tiles: bool) -> None:
        time.sleep(0.01)
        print(f"{inp} -> {out}: done", file=sys.stderr)

    assert for_each_file(["a", "b", "c"], ["A", "B", "C"], one, "compress", quiet=False) == 0
    text = term.getvalue()
    assert "compress:" in text  # the bar was drawn
    printed = [row for row in _rows(text) if "done" in row]
    assert printed == ["a -> A: done", "b -> B: done", "c -> C: done"], repr(text)
    assert sys.stderr is term  # the redirection ends with the bar


def test_tile_bar_counts_tiles_without_a_bogus_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    bar = LazyBar("big.png", disabled=False)
    bar.update(1, 4)  # the bar appears after the first of four tiles
    time.sleep(0.05)
    bar.update(2, 4)
    shown = _rows(term.getvalue())[-1]
    bar.close()
    assert "2/4 tiles" in shown, shown
    assert "/s" not in shown and "it/s" not in shown, shown


def test_train_shows_only_our_progress_bar(tmp_path: Path) -> None:
    """No Lightning banners ("GPU available: ...") and no Lightning bar before ours."""
    pytest.importorskip("lightning")
    import numpy as np
    from PIL import Image

    data = tmp_path / "train"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (72, 80, 3), dtype=np.uint8)).save(data / f"{i}.png")
    script = f"""
import io, sys
class Terminal(io.StringIO):
    def isatty(self):
        return True
term = Terminal()
sys.stdout = sys.stderr = term  # before Lightning binds its log handler to stderr
from licodec.train.config import TrainConfig
from licodec.train.trainer import run_training
run_training(TrainConfig(model="wacnn-tiny", data={str(data)!r}, out={str(tmp_path / "run")!r},
                         crop=64, batch_size=2, steps=3, progress="bar", threads=1,
                         ckpt_every=100, export=False))
sys.__stdout__.write(term.getvalue())
"""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "train:" in out  # our bar
    noises = ("GPU available", "TPU available", "Training:", "Epoch 0", "`Trainer.fit` stopped")
    for noise in noises:
        assert noise not in out, (noise, out)
