"""The I/O layer: one atomic writer (every file appears whole or not at all, with the
permissions the umask allows, no temporary file left after an error), one image
loader and one list of image extensions."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from licodec.codec.files import atomic_output
from licodec.errors import OutputError

SRC = Path(__file__).resolve().parent.parent / "src" / "licodec"


@pytest.fixture()
def umask022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_permissions_follow_the_umask(tmp_path: Path, mask: int, mode: int) -> None:
    old = os.umask(mask)
    try:
        with atomic_output(tmp_path / "a.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.bin") == mode
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


@pytest.mark.parametrize("error", [ValueError("boom"), KeyboardInterrupt()])
def test_an_error_leaves_neither_file_nor_temporary(tmp_path: Path, error: BaseException) -> None:
    with pytest.raises(type(error)), atomic_output(tmp_path / "a.bin") as tmp:
        tmp.write_bytes(b"half")
        raise error
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_kept_whole_until_the_new_one_is_complete(tmp_path: Path) -> None:
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(dest) as tmp:
        tmp.write_bytes(b"new, half")
        assert dest.read_bytes() == b"old"
        raise RuntimeError
    assert dest.read_bytes() == b"old"
    with atomic_output(dest) as tmp:
        tmp.write_bytes(b"new")
    assert dest.read_bytes() == b"new" and len(list(tmp_path.iterdir())) == 1


def test_no_clobber_and_os_errors_are_one_line_output_errors(tmp_path: Path) -> None:
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"old")
    with (
        pytest.raises(OutputError, match="exists; use -f to overwrite"),
        atomic_output(dest, overwrite=False) as tmp,
    ):
        tmp.write_bytes(b"new")
    assert dest.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1
    missing = tmp_path / "missing" / "b.bin"
    with pytest.raises(OutputError, match=r"cannot write .*missing/b\.bin"), atomic_output(missing):
        pass
    with atomic_output(tmp_path / "made" / "b.bin", mkdir=True) as tmp:
        tmp.write_bytes(b"ok")
    assert (tmp_path / "made" / "b.bin").read_bytes() == b"ok"


def test_every_writer_of_the_package_goes_through_it(tmp_path: Path, umask022: None) -> None:
    from licodec.eval.results import write_json_atomic
    from licodec.models import create_model
    from licodec.train.callbacks import AtomicCheckpointIO, CsvLog
    from licodec.train.config import atomic_write_text
    from licodec.zoo.weights import save_weights

    model = create_model("wacnn-tiny").eval()
    written = [
        save_weights(model, tmp_path / "w" / "m.safetensors"),
        tmp_path / "r" / "res.json",
        tmp_path / "c" / "config.yaml",
        tmp_path / "k" / "last.ckpt",
        tmp_path / "metrics.csv",
    ]
    write_json_atomic({"a": 1}, written[1])
    atomic_write_text(written[2], "a: 1\n")
    AtomicCheckpointIO().save_checkpoint({"t": torch.zeros(2)}, written[3])
    written[4].write_text("step,loss\n1,2\n2,3\n")
    os.chmod(written[4], 0o600)
    CsvLog(written[4], resume_step=1)  # rewrites the file without the rows after step 1
    assert written[4].read_text().splitlines() == ["step,loss", "1,2"]
    try:
        import matplotlib
    except ImportError:
        pass
    else:
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from licodec.eval.plot import save_figure

        fig = plt.figure()
        save_figure(fig, tmp_path / "p" / "plot.png")
        plt.close(fig)
        written.append(tmp_path / "p" / "plot.png")
    for path in written:
        assert _mode(path) == 0o644, path
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p not in written]
    assert leftovers == []


def test_the_package_has_no_other_rename_writer() -> None:
    """A second writer would drift (fsync, permissions, clean-up); this keeps it one."""
    pattern = re.compile(r"\b(os\.replace|os\.rename|tempfile\.mkstemp|NamedTemporaryFile)\(")
    offenders = [
        f"{p.relative_to(SRC)}:{i}"
        for p in SRC.rglob("*.py")
        if p.name != "files.py"
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


# -- one image loader, one list of extensions -----------------------------------------------


def test_a_16_bit_png_reads_the_same_for_codec_training_and_evaluation(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from licodec.codec.image_io import load_image, read_rgb
    from licodec.train.data import scan_images

    grey = (np.arange(12 * 10, dtype=np.uint16).reshape(12, 10) * 541) % 65536
    path = tmp_path / "deep.png"
    Image.fromarray(grey.astype(np.uint16)).save(path)
    expect = ((grey.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8)  # rounded, not cut
    rgb = read_rgb(path)
    assert rgb.shape == (12, 10, 3) and rgb.dtype == np.uint8
    assert all(np.array_equal(rgb[:, :, c], expect) for c in range(3))
    assert np.array_equal(load_image(path).pixels, expect)  # what compress codes
    assert scan_images(tmp_path).files == ["deep.png"]


def test_jpeg_xl_is_known_without_any_other_import() -> None:
    """The plugin registers in one place, so a fresh process lists and reads .jxl."""
    import subprocess
    import sys

    pytest.importorskip("pillow_jxl")
    code = (
        "import io, sys, numpy as np\n"
        "from licodec.codec.image_io import image_extensions, read_rgb\n"
        "assert '.jxl' in image_extensions(), 'jxl not listed'\n"
        "from PIL import Image\n"
        "buf = io.BytesIO()\n"
        "Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(buf, format='JXL', lossless=True)\n"
        "assert read_rgb(buf.getvalue()).shape == (8, 8, 3)\n"
        "assert 'pillow_jxl' in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_unreadable_files_are_one_line_input_errors(tmp_path: Path) -> None:
    from licodec.codec.image_io import read_rgb
    from licodec.errors import InputError

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(InputError, match="bad.png: not an image that Pillow can read"):
        read_rgb(bad)
    with pytest.raises(InputError, match="no such file"):
        read_rgb(tmp_path / "none.png")
