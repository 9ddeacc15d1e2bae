"""The .gqc bitstream: round trips, sizes, header validation, priors, torch-free import."""
from __future__ import annotations

import json
import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitstream import HEADER_SIZE, MAGIC, VERSION, FormatError, Prior, pack, read_header, unpack
from test_bitstream_helpers import edit, fix_crcs, make_header, random_indices, sample_from_prior, skewed_prior


# -- round trips -------------------------------------------------------------------
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(K_bits=st.integers(1, 24), n=st.integers(1, 4), lh=st.integers(1, 6), lw=st.integers(1, 6),
       coding=st.sampled_from(["raw", "range"]), stride=st.sampled_from([1, 2, 16, 255]),
       seed=st.integers(0, 2**32 - 1))
def test_round_trip_uniform(K_bits, n, lh, lw, coding, stride, seed):
    if coding == "range" and K_bits > 23:
        coding = "raw"
    rng = np.random.default_rng(seed)
    h = make_header(K_bits, n, lh, lw, coding, stride=stride)
    idx = random_indices(rng, K_bits, n, lh, lw)
    data = pack(h, idx)
    h2, out = unpack(data)
    assert out.dtype == np.int64 and out.shape == (n, lh, lw)
    assert np.array_equal(out, idx)
    assert h2 == read_header(data) == read_header(data[:HEADER_SIZE])
    assert (h2.coding, h2.prior, h2.symbol_count) == (coding, "uniform", n * lh * lw)
    assert len(data) == HEADER_SIZE + h2.payload_length == h2.file_size
    if coding == "raw":
        assert h2.payload_length == -(-n * lh * lw * K_bits // 8)
    # the input header is left alone
    assert h.symbol_count == 0 and h.payload_length == 0


_priors: dict = {}


def _prior(K_bits, T, kind):
    key = (K_bits, T, kind)
    if key not in _priors:
        rng = np.random.default_rng(K_bits * 100 + T)
        K = 1 << K_bits
        if kind == "skewed":
            _priors[key] = skewed_prior(rng, K, T, tau=max(1.0, K / 16))
        else:  # arbitrary positive tables, totals far from 2**24
            _priors[key] = Prior(rng.integers(1, 1000, size=(T, K)))
    return _priors[key]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(K_bits=st.integers(1, 16), n=st.integers(1, 4), lh=st.integers(1, 5), lw=st.integers(1, 5),
       multi=st.booleans(), kind=st.sampled_from(["skewed", "random"]), matched=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_round_trip_model_prior(K_bits, n, lh, lw, multi, kind, matched, seed):
    rng = np.random.default_rng(seed)
    prior = _prior(K_bits, 4 if multi else 1, kind)
    idx = sample_from_prior(rng, prior, n, lh, lw) if matched else random_indices(rng, K_bits, n, lh, lw)
    data = pack(make_header(K_bits, n, lh, lw, "range"), idx, prior=prior)
    h, out = unpack(data, prior=prior)
    assert np.array_equal(out, idx)
    assert h.prior == "model" and h.prior_id == prior.prior_id


def test_round_trip_one_symbol_every_k():
    rng = np.random.default_rng(0)
    for k in range(1, 25):
        for coding in ("raw", "range") if k <= 23 else ("raw",):
            for v in (0, (1 << k) - 1, int(rng.integers(0, 1 << k))):
                idx = np.full((1, 1, 1), v)
                h, out = unpack(pack(make_header(k, 1, 1, 1, coding), idx))
                assert out[0, 0, 0] == v


def test_raw_bit_order_known_answer():
    # K_bits=5, indices 1, 2, 31 -> bits 00001 00010 11111 (+1 zero pad bit), MSB first
    h = make_header(5, 1, 1, 3, "raw")
    data = pack(h, np.array([[[1, 2, 31]]]))
    assert data[HEADER_SIZE:] == bytes([0b00001000, 0b10111110])
    # K_bits=12 over 4 values -> 6 bytes, big-endian nibbles
    data = pack(make_header(12, 1, 2, 2, "raw"), np.array([[[0xABC, 0x123], [0xFFF, 0x000]]]))
    assert data[HEADER_SIZE:] == bytes.fromhex("abc123fff000")


def test_large_raw_chunks_round_trip():
    # more symbols than one internal chunk (65536), odd bit width
    rng = np.random.default_rng(3)
    idx = random_indices(rng, 13, 3, 200, 150)
    data = pack(make_header(13, 3, 200, 150, "raw"), idx)
    assert np.array_equal(unpack(data)[1], idx)


def test_pack_accepts_any_integer_dtype():
    rng = np.random.default_rng(4)
    idx = random_indices(rng, 8, 2, 3, 4)
    ref = pack(make_header(8, 2, 3, 4, "range"), idx)
    for dt in (np.uint8, np.int16, np.uint32, np.int32, np.uint64):
        assert pack(make_header(8, 2, 3, 4, "range"), idx.astype(dt)) == ref


# -- sizes ------------------------------------------------------------------------
@pytest.mark.parametrize("K_bits,tau", [(16, 2.0**16 / 512), (8, 4.0)])
def test_range_size_close_to_cross_entropy(K_bits, tau):
    rng = np.random.default_rng(K_bits)
    n, lh, lw = 20, 32, 48
    prior = skewed_prior(rng, 1 << K_bits, n, tau=tau)
    idx = sample_from_prior(rng, prior, n, lh, lw)
    data = pack(make_header(K_bits, n, lh, lw, "range"), idx, prior=prior)
    payload_bits = 8 * (len(data) - HEADER_SIZE)
    ideal = prior.bits(idx)  # under the exact 24-bit weights
    # cross-entropy under the float tables themselves (what tools report)
    f = prior.freqs.astype(np.float64)
    p = f / f.sum(axis=1, keepdims=True)
    ce = -sum(np.log2(p[b][idx[b].ravel()]).sum() for b in range(n))
    assert payload_bits <= ideal * 1.005 + 64
    assert payload_bits <= ce * 1.005 + 64
    assert payload_bits >= ideal - 64  # a range coder cannot beat the information content
    assert ce < K_bits * idx.size * 0.8  # the example really is skewed
    print(f"\nK=2**{K_bits}: range payload {payload_bits / 8:.0f} B, cross-entropy {ce / 8:.0f} B, "
          f"raw {K_bits * idx.size / 8:.0f} B")


def test_uniform_range_size_is_k_bits_per_symbol():
    rng = np.random.default_rng(1)
    for k in (1, 5, 8, 16, 23):
        idx = random_indices(rng, k, 20, 32, 48) if k <= 16 else random_indices(rng, k, 2, 8, 8)
        h, _ = unpack(pack(make_header(k, *idx.shape, "range"), idx))
        bits = k * idx.size
        assert bits <= 8 * h.payload_length <= bits + 64


# -- header -----------------------------------------------------------------------
def _valid(coding="raw", **kw):
    rng = np.random.default_rng(7)
    h = make_header(coding=coding, **kw)
    return pack(h, random_indices(rng, h.K_bits, h.n_blocks, h.latent_h, h.latent_w))


def test_header_layout_and_constants():
    assert HEADER_SIZE == 96 and VERSION == 7 and MAGIC == b"\x89GQC"
    data = _valid(K_bits=10)
    h = read_header(data)
    assert data[:4] == MAGIC and data[4] == 1
    assert struct.unpack_from("<H", data, 12)[0] == h.n_blocks
    assert data[16:32].rstrip(b"\0") == b"gq-test"
    assert struct.unpack_from("<Q", data, 40)[0] == h.codebook_seed
    assert struct.unpack_from("<4I", data, 48) == (h.width, h.height, h.latent_h, h.latent_w)
    assert struct.unpack_from("<QII", data, 64) == (h.symbol_count, h.payload_length, h.payload_crc)
    d = h.to_dict()
    json.dumps(d)
    assert d["model_hash"] == bytes(range(1, 9)).hex() and d["K"] == 1024
    assert h.bpp() == pytest.approx(8 * len(data) / (h.width * h.height))
    assert h.bpp(1000) == pytest.approx(8000 / (h.width * h.height))


def _err(data, *words, prior=None, header_only=False):
    with pytest.raises(FormatError) as e:
        if header_only:
            read_header(data)
        else:
            unpack(data, prior=prior)
    msg = str(e.value)
    for w in words:
        assert w in msg, msg
    return msg


def test_bad_magic_version_reserved():
    data = _valid()
    _err(b"\x89PNG" + data[4:], "bad magic")
    _err(data[:3], "truncated header")
    _err(b"", "truncated header")
    _err(data[:50], "truncated header", header_only=True)
    _err(edit(data, 4, b"\x08"), "unsupported version 8", "supports 1, 2, 3, 4, 5, 6, 7")
    # a v7 file is range coded with the model prior and escape bits (this one is raw)
    _err(edit(data, 4, b"\x07"), "version 7 files are range coded")
    # a v5 file is range coded with a count-conditioned model prior (this one is raw)
    _err(edit(data, 4, b"\x05"), "version 5 files are range coded")
    # a v4 header must say how long its metadata block is
    _err(edit(data, 4, b"\x04"), "metadata_length out of range")
    # a v3 header must name its escape bits (and v1/v2 headers must not)
    _err(edit(data, 4, b"\x03"), "ext_bits out of range")
    _err(data[:4] + b"\x08", "unsupported version 8")
    _err(edit(data, 14, b"\x01"), "reserved")
    _err(edit(data, 91, b"\x80"), "reserved")


@pytest.mark.parametrize("offset,value,words", [
    (5, b"\x00", ["K_bits out of range"]),
    (5, b"\x19", ["K_bits out of range"]),
    (6, b"\x00", ["field m out of range"]),
    (6, b"\x41", ["field m out of range"]),
    (7, b"\x00", ["stride out of range"]),
    (8, b"\x02", ["color out of range"]),
    (9, b"\x02", ["coding out of range"]),
    (10, b"\x02", ["prior out of range"]),
    (10, b"\x01", ["prior"]),                      # raw files must record prior 'uniform'
    (12, b"\x00\x00", ["n_blocks out of range"]),
    (12, b"\x05\x00", ["symbol_count inconsistent"]),
    (16, b"\x00" * 16, ["model_id out of range"]),
    (16, b"ab\x00cd", ["model_id"]),
    (16, b"a b", ["model_id"]),
    (16, b"\xe9", ["model_id"]),
    (48, struct.pack("<I", 0), ["width out of range"]),
    (48, struct.pack("<I", (1 << 20) + 1), ["width out of range"]),
    (52, struct.pack("<I", 1 << 21), ["height out of range"]),
    (52, struct.pack("<I", 1000), ["latent_h inconsistent"]),
    (56, struct.pack("<I", 9), ["latent_h inconsistent"]),
    (60, struct.pack("<I", 0), ["latent_w out of range"]),
    (64, struct.pack("<Q", 1 << 40), ["symbol_count inconsistent"]),
    (72, struct.pack("<I", 7), ["length mismatch"]),
    (80, b"\x01", ["prior_id"]),
])
def test_field_validation(offset, value, words):
    data = _valid()
    msg = _err(edit(data, offset, value), *words)
    _err(edit(data, offset, value), *words, header_only=True)
    assert msg


def test_crc_length_trailing():
    data = _valid(coding="range")
    b = bytearray(data)
    b[20] ^= 1
    _err(bytes(b), "header CRC mismatch")
    b = bytearray(data)
    b[-1] ^= 0x40
    _err(bytes(b), "payload CRC mismatch")
    read_header(bytes(b))  # the header alone is fine
    _err(data + b"\0", "trailing bytes")
    _err(data[:-1], "truncated payload")
    _err(data[:HEADER_SIZE], "truncated payload")
    # range payload length not a multiple of 4
    _err(edit(data, 72, struct.pack("<I", read_header(data).payload_length - 1)), "length mismatch")


def test_raw_padding_bits_must_be_zero():
    h = make_header(3, 1, 1, 1, "raw")
    data = pack(h, np.array([[[5]]]))
    assert data[HEADER_SIZE:] == bytes([0b10100000])
    bad = fix_crcs(data[:HEADER_SIZE] + bytes([0b10100001]))
    _err(bad, "padding bits")


def test_range_with_24_bit_indices_rejected():
    data = _valid(K_bits=23, coding="range")
    _err(edit(data, 5, b"\x18"), "range coding")
    with pytest.raises(ValueError, match="range coding"):
        pack(make_header(24, 1, 1, 1, "range"), np.zeros((1, 1, 1), dtype=np.int64))


def test_prior_missing_and_mismatched():
    rng = np.random.default_rng(5)
    prior = skewed_prior(rng, 256, 3)
    idx = sample_from_prior(rng, prior, 3, 4, 5)
    data = pack(make_header(8, 3, 4, 5, "range"), idx, prior=prior)
    _err(data, "needs the model's index prior")
    _err(data, "prior mismatch", prior=skewed_prior(np.random.default_rng(6), 256, 3))
    _err(data, "prior mismatch", prior=Prior.uniform(512))
    # the same table set but fewer tables than blocks: caught by the id, and by the table-count rule
    _err(data, "prior mismatch", prior=Prior(prior.freqs[:2]))
    assert np.array_equal(unpack(data, prior=prior)[1], idx)
    # uniform files ignore a given prior
    u = pack(make_header(8, 3, 4, 5, "range"), idx)
    assert np.array_equal(unpack(u, prior=prior)[1], idx)


def test_forged_symbol_count_is_bounded_before_decoding():
    # a 100x100-latent file claiming 10000 symbols but carrying a single 4-byte word
    prior = Prior.uniform(256)
    small = pack(make_header(8, 1, 1, 1, "range"), np.zeros((1, 1, 1), dtype=np.int64), prior=prior)
    b = bytearray(small)
    b[48:64] = struct.pack("<4I", 1600, 1600, 100, 100)
    b[64:72] = struct.pack("<Q", 10000)
    _err(fix_crcs(bytes(b)), "symbol_count out of range", prior=prior)
    # the same forgery with the uniform prior is caught by the header alone
    u = bytearray(pack(make_header(8, 1, 1, 1, "range"), np.zeros((1, 1, 1), dtype=np.int64)))
    u[48:64], u[64:72] = b[48:64], b[64:72]
    _err(fix_crcs(bytes(u)), "symbol_count out of range", header_only=True)
    # max_symbols lets callers cap the work further
    with pytest.raises(FormatError, match="more than the allowed"):
        unpack(_valid(), max_symbols=5)


def test_pack_caller_errors():
    h = make_header(8, 2, 3, 4, "raw")
    good = np.zeros((2, 3, 4), dtype=np.int64)
    with pytest.raises(ValueError, match="shape"):
        pack(h, np.zeros((2, 4, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="integer"):
        pack(h, good.astype(np.float32))
    with pytest.raises(ValueError, match=r"\[0, 256\)"):
        pack(h, good + 256)
    with pytest.raises(ValueError, match=r"\[0, 256\)"):
        pack(h, good - 1)
    for bad in (dict(model_id="x" * 17), dict(model_id=""), dict(model_id="é"), dict(model_hash=b"123"),
                dict(K_bits=0), dict(m=65), dict(stride=0), dict(quality=256), dict(color="CMYK"),
                dict(coding="zip"), dict(width=10), dict(codebook_seed=-1), dict(codebook_seed=1 << 64)):
        with pytest.raises(ValueError) as e:
            pack(h.replace(**bad), good)
        assert not isinstance(e.value, FormatError) or "version" in str(e.value)
    r = make_header(8, 2, 3, 4, "range")
    for wrong in (Prior.uniform(512), Prior.uniform(100)):  # larger than K, or not a power of two
        with pytest.raises(ValueError, match="prior mismatch"):
            pack(r, good, prior=wrong)
    with pytest.raises(ValueError, match="Prior"):
        pack(r, good, prior=np.ones((1, 256)))


def test_pack_prior_table_count_rule():
    r = make_header(8, 3, 2, 2, "range")
    idx = np.zeros((3, 2, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="tables"):
        pack(r, idx, prior=Prior(np.ones((2, 256), dtype=np.int64)))
    # T == 1 and T >= n_blocks are both fine
    for T in (1, 3, 5):
        p = Prior(np.arange(1, 256 * T + 1).reshape(T, 256))
        assert np.array_equal(unpack(pack(r, idx, prior=p), prior=p)[1], idx)


def test_raw_ignores_prior():
    h = make_header(8, 1, 2, 2, "raw")
    idx = np.arange(4).reshape(1, 2, 2)
    assert pack(h, idx, prior=Prior.uniform(256)) == pack(h, idx)


def test_non_bytes_inputs():
    data = _valid()
    assert np.array_equal(unpack(bytearray(data))[1], unpack(memoryview(data))[1])
    assert read_header(bytearray(data)) == read_header(data)
    with pytest.raises(FormatError):
        unpack("not bytes")
    with pytest.raises(FormatError):
        read_header(12345)


# -- priors -----------------------------------------------------------------------
def test_prior_validation():
    for bad in (np.zeros((1, 4), dtype=np.int64), -np.ones((1, 4), dtype=np.int64), np.ones((1, 4)),
                np.ones((1, 1), dtype=np.int64), np.ones((2, 2, 2), dtype=np.int64),
                np.full((1, 4), 1 << 32, dtype=np.int64), np.full((1, 4), 1 << 31, dtype=np.int64),
                np.ones((0, 4), dtype=np.int64)):
        with pytest.raises(ValueError):
            Prior(bad)
    p = Prior([1, 2, 3, 4])
    assert p.freqs.shape == (1, 4) and p.freqs.dtype == np.uint32 and not p.freqs.flags.writeable


def test_prior_weights_are_exact_24_bit():
    rng = np.random.default_rng(2)
    for K in (2, 3, 256, 4096):
        for f in (rng.integers(1, 10, size=(2, K)), rng.integers(1, 2**32 // K, size=(2, K))):
            w = Prior(f).weights()
            assert w.dtype == np.int64 and (w >= 1).all() and (w.sum(axis=1) == 1 << 24).all()
            assert np.abs(w / 2**24 - f / f.sum(axis=1, keepdims=True)).max() < (K + 1) / 2**24
    for k in (1, 4, 16, 23):
        assert (Prior.uniform(1 << k).weights() == 1 << (24 - k)).all()


def test_prior_from_counts_rule():
    counts = np.array([[0, 0, 10, 1000, 0, 5, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1]])
    p = Prior.from_counts(counts, smoothing=0.5)
    x = counts + 0.5
    expect = np.maximum(1, np.rint(x * 2**24 / x.sum(axis=1, keepdims=True)))
    assert np.array_equal(p.freqs, expect)
    assert (p.freqs >= 1).all()
    assert (np.abs(p.freqs.sum(axis=1).astype(np.int64) - 2**24) <= 4).all()
    assert Prior.from_counts(np.zeros(16)).freqs.min() >= 1
    big = Prior.from_counts(np.full((1, 1 << 16), 10**9))  # huge histograms are rescaled
    assert big.freqs.sum() <= 2**24 + 2**15
    with pytest.raises(ValueError):
        Prior.from_counts(counts, smoothing=0)
    with pytest.raises(ValueError):
        Prior.from_counts(-counts)


def test_prior_hash_save_load(tmp_path):
    rng = np.random.default_rng(9)
    p = Prior(rng.integers(1, 5000, size=(3, 64)))
    h = p.sha256()
    assert len(h) == 64 and h == Prior(p.freqs.astype(np.int64)).sha256()
    assert h != Prior(p.freqs[::-1]).sha256() and h != Prior(p.freqs.reshape(6, 32)).sha256()
    path = tmp_path / "prior.npz"
    p.save(path)
    q = Prior.load(path)
    assert q == p and q.sha256() == h and q.prior_id == p.prior_id
    path2 = tmp_path / "noext"
    p.save(path2)
    assert path2.exists() and Prior.load(path2) == p
    garbage = tmp_path / "bad.npz"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(FormatError):
        Prior.load(garbage)
    np.savez(tmp_path / "zero.npz", freqs=np.zeros((1, 4), dtype=np.uint32))
    with pytest.raises(FormatError, match="invalid prior"):
        Prior.load(tmp_path / "zero.npz")
    np.savez(tmp_path / "other.npz", something=np.ones(3))
    with pytest.raises(FormatError, match="not a prior"):
        Prior.load(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        Prior.load(tmp_path / "missing.npz")


# -- no torch -----------------------------------------------------------------------
def test_import_and_read_header_without_torch():
    data = _valid(coding="range")
    code = (
        "import sys, bitstream\n"
        f"h = bitstream.read_header(bytes.fromhex('{data[:HEADER_SIZE].hex()}'))\n"
        "assert h.n_blocks == 2, h\n"
        "bad = [m for m in ('torch', 'constriction', 'gqcodec') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
