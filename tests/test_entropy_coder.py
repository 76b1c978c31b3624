"""The entropy coders: the range coder licodec writes, the rANS decoder of old files."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import torch
from rans_helpers import RansEncoder

from licodec.codec.limits import max_symbols, min_symbol_cost
from licodec.entropy.cdf import pmfs_to_quantized_cdfs
from licodec.entropy.coder import CoderTables, RangeDecoder, RangeEncoder, RansDecoder, StreamError


def _tables(seed: int, n_tables: int = 12, width: int = 40) -> CoderTables:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, width - 1, n_tables)  # regular symbols per table
    rows = torch.zeros(n_tables, width, dtype=torch.float64)
    for t, n in enumerate(lengths):
        p = rng.random(n) ** 3 + 1e-4
        p /= p.sum() * 1.001
        rows[t, :n] = torch.from_numpy(p)
        rows[t, n] = 0.001 / 1.001  # the tail mass: the escape entry
    cdf = pmfs_to_quantized_cdfs(rows, torch.from_numpy(lengths + 1), 16)
    return CoderTables.from_arrays(cdf.numpy(), lengths + 2, rng.integers(-12, 1, n_tables))


def _message(
    tables: CoderTables, n: int, seed: int, escapes: bool = True
) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, tables.cdf.shape[0], n)
    top = tables.max_values[idx]
    sym = tables.offsets[idx] + rng.integers(0, top)
    if escapes:
        sym[::97] -= rng.integers(1, 40, len(sym[::97]))  # below the table
        sym[5::89] += top[5::89] + rng.integers(0, 3000, len(sym[5::89]))  # above
        sym[7] = tables.offsets[idx[7]] + (1 << 31) - 1 + int(top[7]) // 2  # 32-bit escape
        sym[9] = tables.offsets[idx[9]] - (1 << 30)
    return sym, idx


@pytest.mark.parametrize("seed", range(3))
def test_range_round_trip_in_several_calls(seed: int) -> None:
    tables = _tables(seed)
    sym, idx = _message(tables, 20_000, seed)
    cuts = [0, 1, 5000, 5001, 20_000]
    enc = RangeEncoder()
    for a, b in itertools.pairwise(cuts):
        enc.encode(sym[a:b], idx[a:b], tables)
    data = enc.finish()
    assert len(data) % 4 == 0
    dec = RangeDecoder(data)
    out = np.concatenate([dec.decode(idx[a:b], tables) for a, b in itertools.pairwise(cuts)])
    assert np.array_equal(out, sym)


def test_range_rate_is_the_tables_information() -> None:
    """Without escapes the stream is the symbols' information under the 16-bit tables
    (the perfect quantization keeps the frequencies), within the flush."""
    tables = _tables(4)
    sym, idx = _message(tables, 50_000, 4, escapes=False)
    enc = RangeEncoder()
    enc.encode(sym, idx, tables)
    bits = 8 * len(enc.finish())
    rows = tables.rows()
    info = sum(
        -math.log2((rows[t][v + 1] - rows[t][v]) / 65536)
        for v, t in zip((sym - tables.offsets[idx]).tolist(), idx.tolist())
    )
    assert info - 64 <= bits <= info * 1.001 + 64


@pytest.mark.parametrize("top", [65533, 65000, 40000, 1000])
def test_range_stream_respects_the_decoders_symbol_bound(top: int) -> None:
    """The limits refuse a stream shorter than its symbols' least cost, with no slack
    (``RANGE_SLACK_BITS``): real streams of the cheapest message there is (a table's
    likeliest symbol, repeated) are never shorter than its information."""
    cdf = np.array([[0, top, 65535, 65536]])
    tables = CoderTables.from_arrays(cdf, [4], [0])
    cost = min_symbol_cost(top, "range")
    assert cost == pytest.approx(-math.log2(top / 65536))
    most = 3_000_000 if top > 60000 else 200_000
    for n in np.unique(np.geomspace(1, most, 300).astype(int)):
        enc = RangeEncoder()
        enc.encode(np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), tables)
        data = enc.finish()
        assert n <= max_symbols(len(data), cost, "range"), (n, len(data))


def _junk_decodes(decoder: type, tables: CoderTables, seed: int) -> None:
    """Random bytes decode to symbols of the right shape or fail with a StreamError."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, tables.cdf.shape[0], 4000)
    for _ in range(25):
        junk = rng.integers(0, 256, 4 * int(rng.integers(2, 50)), dtype=np.uint8).tobytes()
        try:
            out = decoder(junk).decode(idx, tables)
        except StreamError:
            continue
        assert out.shape == idx.shape  # garbage values, but of the right shape


def test_range_decoder_errors_are_clean() -> None:
    tables = _tables(6)
    with pytest.raises(StreamError, match="whole 32-bit words"):
        RangeDecoder(b"\x01\x02\x03")
    _junk_decodes(RangeDecoder, tables, 0)
    with pytest.raises(ValueError, match="out of range"):
        RangeEncoder().encode(np.zeros(3), np.array([0, 1, 99]), tables)


@pytest.mark.parametrize("seed", range(2))
def test_rans_decoder_reads_the_test_encoders_streams(seed: int) -> None:
    tables = _tables(10 + seed)
    sym, idx = _message(tables, 5000, seed)
    enc = RansEncoder()
    enc.encode(sym[:3000], idx[:3000], tables)
    enc.encode(sym[3000:], idx[3000:], tables)
    dec = RansDecoder(enc.finish())
    out = np.concatenate([dec.decode(idx[:1234], tables), dec.decode(idx[1234:], tables)])
    assert np.array_equal(out, sym)


def test_rans_decoder_and_test_encoder_equal_compressai() -> None:
    """CompressAI 1.2.8 is the oracle of the rANS format: its bytes are the test encoder's,
    and its decoder and ours agree on them (escapes included)."""
    pytest.importorskip("compressai", reason="CompressAI (licodec[compressai]) is the oracle")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from compressai import ans

        from licodec import _compressai  # noqa: F401

    tables = _tables(20)
    sym, idx = _message(tables, 8000, 20)
    # CompressAI loops forever on escapes of 2^28 or more (an int32 shifted by 32 bits)
    sym = np.clip(sym, -(1 << 20), 1 << 20)
    cdf, lengths = tables.cdf.tolist(), tables.lengths.tolist()
    offsets = tables.offsets.tolist()
    theirs = ans.RansEncoder().encode_with_indexes(
        sym.tolist(), idx.tolist(), cdf, lengths, offsets
    )
    enc = RansEncoder()
    enc.encode(sym, idx, tables)
    assert enc.finish() == theirs
    assert np.array_equal(RansDecoder(theirs).decode(idx, tables), sym)


def test_rans_decoder_errors_are_clean() -> None:
    tables = _tables(7)
    with pytest.raises(StreamError, match="whole 32-bit words"):
        RansDecoder(b"\x00" * 9)
    _junk_decodes(RansDecoder, tables, 1)


def test_tables_copy_and_pickle_without_the_coder_models() -> None:
    import copy
    import pickle

    tables = _tables(8)
    sym, idx = _message(tables, 300, 8)
    enc = RangeEncoder()
    enc.encode(sym, idx, tables)  # builds the constriction models
    data = enc.finish()
    for other in (copy.deepcopy(tables), pickle.loads(pickle.dumps(tables))):
        assert np.array_equal(RangeDecoder(data).decode(idx, other), sym)
