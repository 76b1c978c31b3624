"""Files coded with --portable decode on a machine with other float arithmetic.

Another machine is emulated by decoding in a subprocess that restricts torch,
oneDNN and MKL to baseline SSE kernels instead of this CPU's vector units.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from codec_helpers import one_thread, photo  # noqa: F401 (fixture)
from PIL import Image

OTHER_ISA = {
    "ATEN_CPU_CAPABILITY": "default",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
    "OMP_NUM_THREADS": "1",
}


def _decode_elsewhere(lic: Path, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **OTHER_ISA}
    cmd = [
        sys.executable,
        "-m",
        "licodec.cli.main",
        "decompress",
        str(lic),
        "-o",
        str(out),
        "--quiet",
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_portable_files_decode_under_other_kernels(tmp_path: Path) -> None:
    from licodec.codec.api import Codec
    from licodec.errors import EXIT_MODEL

    image = photo(192, 256, seed=3)
    for portable in (True, False):
        codec = Codec(portable=portable)  # the shipped default model
        res = codec.encode(image, keep_reconstruction=True)
        expected = np.asarray(res.reconstruction, dtype=int)
        # Same process and kernels: bit for bit
        assert np.array_equal(np.asarray(codec.decompress(res.data), dtype=int), expected)
        lic, png = tmp_path / f"p{int(portable)}.lic", tmp_path / f"p{int(portable)}.png"
        lic.write_bytes(res.data)
        proc = _decode_elsewhere(lic, png)
        if portable or proc.returncode == 0:
            assert proc.returncode == 0, proc.stderr
            got = np.asarray(Image.open(png), dtype=int)
            # The latents are the encoder's; float32 synthesis may round a few samples
            # the other way.
            diff = np.abs(got - expected)
            assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (diff.max(), (diff > 0).mean())
        else:  # never a garbled image: a clear error and no output
            assert proc.returncode == EXIT_MODEL, proc.stderr
            assert "coded without --portable" in proc.stderr and "Traceback" not in proc.stderr
            assert not png.exists()


_TABLES = """
import hashlib, sys
from licodec.zoo.pretrained import default_entry
from licodec.zoo.weights import load_weights
m, _ = load_weights(default_entry().path)
for n in ("entropy_bottleneck", "gaussian_conditional"):
    mod = getattr(m, n)
    for t in (mod._quantized_cdf, mod._offset, mod._cdf_length):
        sys.stdout.write(hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()[:16] + " ")
"""


def test_coder_tables_do_not_depend_on_the_cpu_kernels() -> None:
    """update() rebuilds the CDF tables on each machine: they must come out the same.

    CompressAI builds the z tables in float32, where this CPU's AVX-512 kernels and
    baseline SSE ones moved one rounding for the shipped model (its files then failed
    to decode elsewhere); they are built in float64 now.
    """
    runs = [
        subprocess.run(
            [sys.executable, "-c", _TABLES],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        ).stdout
        for env in ({"OMP_NUM_THREADS": "1"}, OTHER_ISA)
    ]
    assert len(runs[0].split()) == 6 and runs[0] == runs[1]
