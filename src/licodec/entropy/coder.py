"""Entropy coders over the entropy models' quantized CDF tables.

A *table* is one row of an entropy model's ``_quantized_cdf`` (16-bit CDF
values, ``_cdf_length`` of them), its ``_offset`` (the symbol of the first
entry) and an escape entry last: a symbol outside the table's range is coded
as the escape followed by its value. Every symbol comes with the index of its
table, which the decoder knows before it decodes the symbol (from ``z`` or
from the slices decoded so far).

Two coders:

* :class:`RangeEncoder` / :class:`RangeDecoder` — what licodec writes
  (container format 4 on). The arithmetic is constriction's range coder
  (``constriction.stream.queue``, 32-bit words); each table becomes a
  categorical model whose probabilities are exactly the table's 16-bit
  frequencies (constriction's *perfect* quantization of ``f / 2^16`` at its
  24-bit precision is ``f * 2^8``), so the rate is the table's. Within one
  call the symbols are coded table by table (ascending index, raster order
  inside a table): one model call per table instead of one per symbol. The
  values of the escaped symbols follow (zig-zag mapped as CompressAI maps
  them): their bit lengths ``b`` (uniform over 0..32), then, for each ``b``
  in turn, the ``b - 1`` bits below the leading one (uniform; in pieces of at
  most 16 bits), so an escape costs about ``5 + b`` bits.
* :class:`RansDecoder` — the decoder of files of formats 1 to 3, written with
  CompressAI 1.2.8's rANS (ryg_rans' 64-bit state, 32-bit words, 16-bit
  probabilities, escapes as 4-bit bypass nibbles). Re-implemented here from
  that coder's definition so that old files decode without CompressAI; it is
  pure Python, about a microsecond per symbol (a Kodak image in about a
  second).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "CODER_RANGE",
    "CODER_RANS",
    "CoderTables",
    "RangeDecoder",
    "RangeEncoder",
    "RansDecoder",
    "StreamError",
    "make_decoder",
]

#: Coder ids, as :attr:`licodec.codec.container.Container.coder` names them.
CODER_RANS = "rans"  # CompressAI 1.2.8's rANS: formats 1-3, decode only
CODER_RANGE = "range"  # constriction's range coder: format 4 on

PRECISION = 16  # bits of the tables' probabilities
_ESCAPE_BITS = 33  # an escaped value's bit length is one of 0..32
_CHUNK = 16  # escaped values are coded in pieces of at most 16 bits


class StreamError(ValueError):
    """A stream that no encoder wrote (or that belongs to other tables)."""


def _constriction() -> Any:
    import constriction

    return constriction


@dataclass(eq=False)
class CoderTables:
    """The tables in the form the coders use, built once per set of tables."""

    cdf: np.ndarray  # (T, W) int64, rows zero-padded past their length
    lengths: np.ndarray  # (T,) int64: CDF entries of each row (escape and 2^16 included)
    offsets: np.ndarray  # (T,) int64
    _models: list[Any] | None = field(default=None, repr=False)
    _rows: list[list[int]] | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        # constriction's models neither pickle nor deep-copy: rebuilt on first use
        return {**self.__dict__, "_models": None, "_rows": None}

    @classmethod
    def from_arrays(cls, cdf: Any, lengths: Any, offsets: Any) -> CoderTables:
        cdf = np.asarray(cdf, dtype=np.int64)
        lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
        offsets = np.asarray(offsets, dtype=np.int64).reshape(-1)
        if (
            cdf.ndim != 2
            or cdf.shape[0] == 0
            or lengths.shape != offsets.shape
            or lengths.shape[0] != cdf.shape[0]
        ):
            raise ValueError("malformed entropy coder tables")
        if lengths.min() < 3 or lengths.max() > cdf.shape[1]:
            raise ValueError("malformed entropy coder tables (row lengths)")
        return cls(cdf, lengths, offsets)

    @property
    def max_values(self) -> np.ndarray:
        """The escape entry of each table (its number of regular symbols)."""
        return self.lengths - 2

    def models(self) -> list[Any]:
        """One constriction categorical model per table (its exact 16-bit frequencies)."""
        if self._models is None:
            cat = _constriction().stream.model.Categorical
            models = []
            for row, n in zip(self.cdf, self.lengths):
                freqs = np.diff(row[: int(n)]).astype(np.float64)
                if freqs.min() <= 0 or row[int(n) - 1] != 1 << PRECISION:
                    raise ValueError("malformed entropy coder table (not a 16-bit CDF)")
                models.append(cat(freqs, perfect=True))
            self._models = models
        return self._models

    def rows(self) -> list[list[int]]:
        """The CDF rows as Python lists, cut to their lengths (for the rANS decoder)."""
        if self._rows is None:
            self._rows = [row[: int(n)].tolist() for row, n in zip(self.cdf, self.lengths)]
        return self._rows


def _check_indexes(indexes: np.ndarray, tables: CoderTables) -> np.ndarray:
    idx = np.ascontiguousarray(indexes, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= tables.cdf.shape[0]):
        raise ValueError("a table index is out of range")
    return idx


def _groups(idx: np.ndarray, n_tables: int) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """The coding order (by table, raster order within one) and (table, start, count) runs."""
    order = np.argsort(idx, kind="stable")
    counts = np.bincount(idx, minlength=n_tables)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    runs = [(int(t), int(starts[t]), int(counts[t])) for t in np.flatnonzero(counts)]
    return order, runs


class RangeEncoder:
    """Symbols with per-symbol tables into one range-coded stream (format 4)."""

    def __init__(self) -> None:
        self._enc = _constriction().stream.queue.RangeEncoder()

    def encode(self, symbols: Any, indexes: Any, tables: CoderTables) -> None:
        """Append ``symbols`` (integers, any shape) coded with the tables ``indexes`` pick."""
        idx = _check_indexes(np.asarray(indexes), tables)
        sym = np.ascontiguousarray(symbols, dtype=np.int64).reshape(-1)
        if sym.shape != idx.shape:
            raise ValueError("symbols and indexes must have the same number of elements")
        value = sym - tables.offsets[idx]
        top = tables.max_values[idx]
        escaped = (value < 0) | (value >= top)
        coded = np.where(escaped, top, value).astype(np.int32)
        order, runs = _groups(idx, tables.cdf.shape[0])
        models = tables.models()
        in_order = coded[order]
        for t, start, count in runs:
            self._enc.encode(in_order[start : start + count], models[t])
        if escaped.any():
            v, m = value[escaped], top[escaped]
            raw = np.where(v < 0, -2 * v - 1, 2 * (v - m))
            if raw.max() >= 1 << 32:
                raise ValueError("a symbol is too large for the entropy coder")
            self._encode_raw(raw)

    def _encode_raw(self, raw: np.ndarray) -> None:
        model = _constriction().stream.model
        nbits = _bit_lengths(raw)
        self._enc.encode(nbits.astype(np.int32), model.Uniform(_ESCAPE_BITS))
        for b in range(2, _ESCAPE_BITS):  # below the leading 1 bit: b - 1 uniform bits
            rest = raw[nbits == b] - (1 << (b - 1))
            if rest.size == 0:
                continue
            lo_bits = min(b - 1, _CHUNK)
            self._enc.encode(
                (rest & ((1 << lo_bits) - 1)).astype(np.int32), model.Uniform(1 << lo_bits)
            )
            if b - 1 > _CHUNK:
                self._enc.encode(
                    (rest >> _CHUNK).astype(np.int32), model.Uniform(1 << (b - 1 - _CHUNK))
                )

    def finish(self) -> bytes:
        """The stream: whole little-endian 32-bit words."""
        words = self._enc.get_compressed()
        return np.asarray(words, dtype="<u4").tobytes()


class RangeDecoder:
    """Inverse of :class:`RangeEncoder`, call for call with the same indexes."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        if len(data) % 4:
            raise StreamError("a range-coded stream is whole 32-bit words")
        words = np.frombuffer(bytes(data), dtype="<u4").astype(np.uint32)
        self._dec = _constriction().stream.queue.RangeDecoder(words)

    def _decode(self, model: Any, count: int) -> np.ndarray:
        if count == 0:
            return np.zeros(0, dtype=np.int64)
        try:
            return np.asarray(self._dec.decode(model, count), dtype=np.int64)
        except (AssertionError, ValueError, RuntimeError) as exc:  # invalid data
            raise StreamError(f"corrupt entropy-coded stream ({exc})") from None

    def decode(self, indexes: Any, tables: CoderTables) -> np.ndarray:
        """The symbols (int64, flat, in the order of ``indexes``)."""
        idx = _check_indexes(np.asarray(indexes), tables)
        order, runs = _groups(idx, tables.cdf.shape[0])
        models = tables.models()
        in_order = np.empty(idx.shape, dtype=np.int64)
        for t, start, count in runs:
            in_order[start : start + count] = self._decode(models[t], count)
        value = np.empty_like(in_order)
        value[order] = in_order
        top = tables.max_values[idx]
        escaped = value == top
        if escaped.any():
            raw = self._decode_raw(int(escaped.sum()))
            m = top[escaped]
            value[escaped] = np.where(raw & 1, -(raw >> 1) - 1, (raw >> 1) + m)
        return value + tables.offsets[idx]

    def _decode_raw(self, n: int) -> np.ndarray:
        model = _constriction().stream.model
        nbits = self._decode(model.Uniform(_ESCAPE_BITS), n)
        raw = np.where(nbits > 0, 1, 0).astype(np.int64) << np.maximum(nbits - 1, 0)
        for b in range(2, _ESCAPE_BITS):
            sel = nbits == b
            count = int(sel.sum())
            if count == 0:
                continue
            lo_bits = min(b - 1, _CHUNK)
            rest = self._decode(model.Uniform(1 << lo_bits), count)
            if b - 1 > _CHUNK:
                rest |= self._decode(model.Uniform(1 << (b - 1 - _CHUNK)), count) << _CHUNK
            raw[sel] += rest
        return raw


def _bit_lengths(raw: np.ndarray) -> np.ndarray:
    """Bits of each non-negative value below 2^32 (0 for 0)."""
    nbits = np.zeros(raw.shape, dtype=np.int64)
    for b in range(32):
        nbits += (raw >> b) > 0
    return nbits


# -- CompressAI's rANS (formats 1-3) -----------------------------------------------------

_RANS_L = 1 << 31  # lower end of the normalised state interval
_MASK64 = (1 << 64) - 1
_BYPASS_BITS = 4
_BYPASS_MAX = (1 << _BYPASS_BITS) - 1


class RansDecoder:
    """Decoder of CompressAI 1.2.8 rANS streams (``RansDecoder.decode_stream`` semantics).

    The state is 64 bits, renormalised by one 32-bit word whenever it falls below
    2^31; a symbol with cumulative frequency ``c`` and frequency ``f`` maps the
    state ``x`` to ``f * (x >> 16) + (x & 0xffff) - c``. An escape is followed
    by its length in 4-bit nibbles (runs of 15 continue) and the nibbles, least
    significant first. Past the end of the stream it reads zero words, as the
    C++ decoder reads the zero padding the codec appends.
    """

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        buf = bytes(data)
        if len(buf) % 4:
            raise StreamError("an rANS stream is whole 32-bit words")
        self._words = np.frombuffer(buf, dtype="<u4").tolist()
        self._pos = 2
        w = self._words
        self._x = (w[0] if w else 0) | ((w[1] if len(w) > 1 else 0) << 32)

    def decode(self, indexes: Any, tables: CoderTables) -> np.ndarray:
        idx = _check_indexes(np.asarray(indexes), tables).tolist()
        rows = tables.rows()
        tops = tables.max_values.tolist()
        offsets = tables.offsets.tolist()
        words, n_words = self._words, len(self._words)
        x, pos = self._x, self._pos
        out = [0] * len(idx)
        bisect_right = bisect.bisect_right

        def get_bits() -> int:
            nonlocal x, pos
            val = x & _BYPASS_MAX
            x >>= _BYPASS_BITS
            if x < _RANS_L:
                x = (x << 32) | (words[pos] if pos < n_words else 0)
                pos += 1
            return val

        for i, t in enumerate(idx):
            cdf = rows[t]
            cum = x & 0xFFFF
            s = bisect_right(cdf, cum) - 1
            start = cdf[s]
            x = ((cdf[s + 1] - start) * (x >> PRECISION) + cum - start) & _MASK64
            if x < _RANS_L:
                x = (x << 32) | (words[pos] if pos < n_words else 0)
                pos += 1
            if s == tops[t]:
                val = get_bits()
                n = val
                while val == _BYPASS_MAX:
                    val = get_bits()
                    n += val
                    if n > 64:
                        raise StreamError("corrupt rANS stream (escape longer than 32 bits)")
                raw = 0
                for j in range(n):
                    raw |= get_bits() << (_BYPASS_BITS * j)
                if raw >= 1 << 32:
                    raise StreamError("corrupt rANS stream (escaped value out of range)")
                s = -(raw >> 1) - 1 if raw & 1 else (raw >> 1) + tops[t]
            out[i] = s + offsets[t]
        self._x, self._pos = x, pos
        return np.asarray(out, dtype=np.int64)


def make_decoder(coder: str, data: bytes | bytearray | memoryview) -> RangeDecoder | RansDecoder:
    """The decoder of ``coder`` (:data:`CODER_RANGE` or :data:`CODER_RANS`) over ``data``."""
    if coder == CODER_RANGE:
        return RangeDecoder(data)
    if coder == CODER_RANS:
        return RansDecoder(data)
    raise ValueError(f"unknown entropy coder {coder!r}")
