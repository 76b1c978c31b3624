"""A test-only encoder of CompressAI 1.2.8 rANS streams (what formats 1-3 hold).

licodec writes only range-coded files (formats 4 and 5) but still decodes the rANS
files of earlier versions (:class:`licodec.entropy.coder.RansDecoder`). To make
such files in the tests without CompressAI, :func:`rans_files` swaps this
encoder in for licodec's range encoder; :func:`relabel` then gives the file
the old format version. ``test_entropy_coder.py`` checks this encoder's bytes
against CompressAI's own (when the optional extra is installed).
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from licodec.entropy.coder import CoderTables

_L = 1 << 31
_PRECISION = 16
_BYPASS = 4
_BYPASS_MAX = 15


class RansEncoder:
    """Same interface as licodec's ``RangeEncoder``: ``encode`` calls, then ``finish``."""

    def __init__(self) -> None:
        self._symbols: list[int] = []
        self._indexes: list[int] = []
        self._tables: CoderTables | None = None

    def encode(self, symbols: Any, indexes: Any, tables: CoderTables) -> None:
        self._symbols += np.asarray(symbols).reshape(-1).tolist()
        self._indexes += np.asarray(indexes).reshape(-1).tolist()
        self._tables = tables

    def finish(self) -> bytes:
        assert self._tables is not None
        rows, tops = self._tables.rows(), self._tables.max_values.tolist()
        offsets = self._tables.offsets.tolist()
        x = _L
        out: list[int] = []  # words, last one first

        def put(start: int, freq: int, bits: int) -> None:
            nonlocal x
            if x >= ((_L >> bits) << 32) * freq:
                out.append(x & 0xFFFFFFFF)
                x >>= 32
            x = ((x // freq) << bits) + (x % freq) + start

        for sym, t in zip(reversed(self._symbols), reversed(self._indexes)):
            cdf, top = rows[t], tops[t]
            value = sym - offsets[t]
            if value < 0 or value >= top:
                raw = -2 * value - 1 if value < 0 else 2 * (value - top)
                n = 0
                while raw >> (n * _BYPASS):
                    n += 1
                for j in range(n - 1, -1, -1):
                    put((raw >> (j * _BYPASS)) & _BYPASS_MAX, 1, _BYPASS)
                while n >= _BYPASS_MAX:
                    n -= _BYPASS_MAX
                    put(_BYPASS_MAX, 1, _BYPASS)
                put(n, 1, _BYPASS)
                value = top
            put(cdf[value], cdf[value + 1] - cdf[value], _PRECISION)
        words = [x & 0xFFFFFFFF, x >> 32, *reversed(out)]
        return np.asarray(words, dtype="<u4").tobytes()


@contextlib.contextmanager
def rans_files() -> Iterator[None]:
    """While active, models write CompressAI rANS streams instead of range-coded ones."""
    from licodec.entropy import channel_ar, models

    saved = channel_ar.RangeEncoder, models.RangeEncoder
    channel_ar.RangeEncoder = models.RangeEncoder = RansEncoder  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        channel_ar.RangeEncoder, models.RangeEncoder = saved  # type: ignore[misc]


def relabel(data: bytes, version: int) -> bytes:
    """``data`` (format 5 without a RATE chunk, written under :func:`rans_files`) as a file of ``version``."""
    b = bytearray(data)
    b[2] = version
    return bytes(b[:-4]) + zlib.crc32(bytes(b[:-4])).to_bytes(4, "little")
