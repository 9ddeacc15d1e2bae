"""The prefix layout (each position codes its own number of leading blocks): format version 2 (the count map
coded with a per-file table, ``map_coding="table"``) and version 5 (context coded, the default)."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from bitstream import HEADER_SIZE, FormatError, Prior, pack, read_header, unpack
from bitstream.container import block_counts, count_table
from bitstream.header import map_table_bytes
from test_bitstream_helpers import edit, fix_crcs, make_header, random_indices, skewed_prior, skip_tail


def _prefix(rng, K_bits=8, n=3, lh=4, lw=5, prior=None, map_coding="table"):
    idx = skip_tail(rng, random_indices(rng, K_bits, n, lh, lw))
    idx[:, 0, 0] = -1          # at least one position codes nothing
    idx[:, -1, -1] = np.arange(n)  # and one codes every block
    h = make_header(K_bits, n, lh, lw, "range")
    return idx, pack(h, idx, prior=prior, map_coding=map_coding)


@pytest.mark.parametrize("map_coding,version", [("table", 2), ("context", 5)])
@pytest.mark.parametrize("kind", ["uniform", "multi", "single"])
def test_prefix_roundtrip(kind, map_coding, version):
    rng = np.random.default_rng(3)
    n = 4
    prior = {"uniform": None, "multi": skewed_prior(rng, 256, n), "single": skewed_prior(rng, 256, 1)}[kind]
    idx, data = _prefix(rng, n=n, prior=prior, map_coding=map_coding)
    h, out = unpack(data, prior=prior)
    assert np.array_equal(out, idx) and out.dtype == np.int64
    assert (h.version, h.layout, data[4], data[14], data[15]) == (version, "prefix", version, 1, 0)
    assert h.symbol_count == int((idx >= 0).sum()) == int(block_counts(idx).sum())
    assert h.to_dict()["layout"] == "prefix" and read_header(data[:HEADER_SIZE]) == h


def test_dense_arrays_stay_version_1():
    rng = np.random.default_rng(4)
    idx = random_indices(rng, 8, 3, 4, 5)
    data = pack(make_header(8, 3, 4, 5, "range"), idx)
    assert data[4] == 1 and read_header(data).layout == "dense"


@pytest.mark.parametrize("map_coding", ["table", "context"])
def test_skipping_costs_fewer_bytes(map_coding):
    rng = np.random.default_rng(5)
    idx = random_indices(rng, 12, 6, 16, 16)
    h = make_header(12, 6, 16, 16, "range")
    half = idx.copy()
    half[3:, :, :8] = -1
    assert len(pack(h, half, map_coding=map_coding)) < len(pack(h, idx)) - 0.9 * (3 * 16 * 8 * 12 / 8) + 64


@pytest.mark.parametrize("map_coding", ["table", "context"])
def test_all_positions_skipped(map_coding):
    idx = -np.ones((2, 3, 4), dtype=np.int64)
    data = pack(make_header(8, 2, 3, 4, "range"), idx, map_coding=map_coding)
    h, out = unpack(data)
    assert h.symbol_count == 0 and np.array_equal(out, idx)


def test_prefix_rules_for_writers():
    h = make_header(8, 3, 2, 2, "range")
    bad = np.zeros((3, 2, 2), dtype=np.int64)
    bad[1, 0, 0] = -1  # a hole: block 2 coded after a skipped block 1
    with pytest.raises(ValueError, match="prefix"):
        pack(h, bad)
    with pytest.raises(ValueError, match="need range coding"):
        pack(h.replace(coding="raw"), -np.ones((3, 2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match=r"\[0, 256\)"):
        pack(h, bad - 5)


def test_count_table():
    t = count_table(np.array([[0, 0, 3], [3, 3, 3]]), 4)
    assert t.dtype == np.uint16 and t.tolist() == [32768, 1, 1, 65535, 1]
    assert map_table_bytes(1) == 4 and map_table_bytes(3) == 8 and map_table_bytes(4) == 12


def _err(data, *words, prior=None):
    with pytest.raises(FormatError) as e:
        unpack(data, prior=prior)
    for w in words:
        assert w in str(e.value), str(e.value)


def test_prefix_readers_reject_malformed_files():
    rng = np.random.default_rng(6)
    idx, data = _prefix(rng, n=3)
    tb = map_table_bytes(3)
    _err(edit(data, 15, b"\x01"), "reserved byte at offset 15")
    _err(edit(data, 14, b"\x02"), "field layout out of range")
    v1 = edit(data, 4, b"\x01")
    _err(v1, "reserved bytes at offset 14..15")
    _err(edit(data, 9, b"\x00"), "prefix layout needs range coding")
    _err(edit(data, HEADER_SIZE, b"\x00\x00", payload_crc=True), "count table entries must all be >= 1")
    assert tb == 2 * (3 + 1)  # no padding with n = 3; with n = 4 the 10 table bytes are padded to 12
    idx4, d4 = _prefix(rng, n=4)
    _err(edit(d4, HEADER_SIZE + 10, b"\x07", payload_crc=True), "padding bytes after the count table")
    sc = read_header(data).symbol_count
    _err(edit(data, 64, struct.pack("<Q", sc + 1)), "symbol_count")
    _err(edit(data, 64, struct.pack("<Q", 3 * 4 * 5 + 1)), "symbol_count inconsistent")
    # a flipped word in the range stream: either undecodable, inconsistent or not canonical
    b = bytearray(data)
    b[HEADER_SIZE + tb + 1] ^= 0x5A
    with pytest.raises(FormatError):
        unpack(fix_crcs(bytes(b)))
    # the last word dropped (lengths and CRCs made consistent): the stream no longer decodes canonically
    cut = data[:-4]
    with pytest.raises(FormatError):
        unpack(fix_crcs(edit(cut, 72, struct.pack("<I", len(cut) - HEADER_SIZE)), payload_crc=True))


def test_context_coded_readers_reject_malformed_files():
    rng = np.random.default_rng(7)
    idx, data = _prefix(rng, n=3, map_coding="context")
    assert read_header(data).version == 5 and read_header(data).payload_length % 4 == 0
    _err(edit(data, 14, b"\x02"), "field layout out of range")
    _err(edit(data, 9, b"\x00"), "needs range coding")
    sc = read_header(data).symbol_count
    _err(edit(data, 64, struct.pack("<Q", sc + 1)), "symbol_count")
    _err(edit(data, 64, struct.pack("<Q", 3 * 4 * 5 + 1)), "symbol_count inconsistent")
    for i in range(0, len(data) - HEADER_SIZE, 3):  # any flipped byte: undecodable, inconsistent or not canonical
        b = bytearray(data)
        b[HEADER_SIZE + i] ^= 0x5A
        with pytest.raises(FormatError):
            unpack(fix_crcs(bytes(b)))
    # a prefix file's payload cannot be shorter than its count map's least cost
    huge = edit(data, 56, struct.pack("<II", 1 << 16, 1 << 16))  # latent 65536 x 65536 (and image sides to match)
    huge = edit(huge, 48, struct.pack("<II", (1 << 16) * 16 - 8, (1 << 16) * 16))
    _err(huge, "out of range")


@pytest.mark.parametrize("map_coding", ["table", "context"])
def test_max_symbols_caps_the_index_array(map_coding):
    rng = np.random.default_rng(8)
    idx, data = _prefix(rng, n=3, lh=4, lw=5, map_coding=map_coding)
    unpack(data, max_symbols=60)
    with pytest.raises(FormatError, match="more than the allowed 59"):
        unpack(data, max_symbols=59)


def test_prefix_with_model_prior_checks_the_prior():
    rng = np.random.default_rng(9)
    prior = skewed_prior(rng, 256, 3)
    idx, data = _prefix(rng, n=3, prior=prior)
    _err(data, "needs the model's index prior")
    _err(data, "prior mismatch", prior=Prior(np.ones((3, 256), dtype=np.int64)))
