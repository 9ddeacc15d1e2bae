"""docs/bitstream.md is a complete spec: an independent pure-Python reader/writer written from it
(no numpy in the codec paths, Python ints only) must agree with the reference implementation."""
from __future__ import annotations

import hashlib
import math
import struct
import zlib

import numpy as np
import pytest

import bitstream
from bitstream import HEADER_SIZE, Prior, pack
from test_bitstream_helpers import make_header, random_indices, sample_from_prior, skewed_prior, skip_tail

M64 = (1 << 64) - 1


# -- an independent implementation of docs/bitstream.md ---------------------------
def spec_header(data: bytes) -> dict:
    assert data[:4] == b"\x89GQC" and data[4] in (1, 2)
    assert zlib.crc32(data[:92]) == struct.unpack_from("<I", data, 92)[0]
    u8 = lambda o: data[o]  # noqa: E731
    u16 = lambda o: struct.unpack_from("<H", data, o)[0]  # noqa: E731
    u32 = lambda o: struct.unpack_from("<I", data, o)[0]  # noqa: E731
    u64 = lambda o: struct.unpack_from("<Q", data, o)[0]  # noqa: E731
    h = dict(version=u8(4), K_bits=u8(5), m=u8(6), stride=u8(7), color={1: "L", 3: "RGB"}[u8(8)],
             coding={0: "raw", 1: "range"}[u8(9)], prior={0: "uniform", 1: "model"}[u8(10)], quality=u8(11),
             n_blocks=u16(12), layout={0: "dense", 1: "prefix"}[u8(14)], model_id=data[16:32].rstrip(b"\0").decode(),
             model_hash=data[32:40], codebook_seed=u64(40), width=u32(48), height=u32(52), latent_h=u32(56),
             latent_w=u32(60), symbol_count=u64(64), payload_length=u32(72), payload_crc=u32(76),
             prior_id=data[80:88])
    assert data[15] == 0 and data[88:92] == b"\0" * 4 and (h["version"] == 2 or h["layout"] == "dense")
    assert h["latent_h"] == -(-h["height"] // h["stride"]) and h["latent_w"] == -(-h["width"] // h["stride"])
    if h["layout"] == "dense":
        assert h["symbol_count"] == h["n_blocks"] * h["latent_h"] * h["latent_w"]
    assert len(data) == HEADER_SIZE + h["payload_length"]
    assert zlib.crc32(data[HEADER_SIZE:]) == h["payload_crc"]
    return h


def spec_weights(row: list[int]) -> list[int]:
    """Section 5.2, exact integers."""
    K, F = len(row), sum(row)
    R = 2**24 - K
    c, acc = [], 0
    for s in range(K + 1):
        c.append(R * acc // F + s)
        if s < K:
            acc += row[s]
    return [c[s + 1] - c[s] for s in range(K)]


class Table:
    """One block's 24-bit distribution: weights w[s], left cumulatives c[s] (section 5.2)."""

    def __init__(self, w: list[int] | None = None, step: int | None = None):
        self.step = step  # uniform: w[s] = step, c[s] = s * step
        if w is not None:
            self.wl, self.cl = w, [0]
            for x in w:
                self.cl.append(self.cl[-1] + x)
            assert self.cl[-1] == 1 << 24 and min(w) >= 1

    def w(self, s):
        return self.step if self.step else self.wl[s]

    def c(self, s):
        return s * self.step if self.step else self.cl[s]

    def find(self, q):  # the s with c[s] <= q < c[s+1]
        if self.step:
            return q // self.step
        lo, hi = 0, len(self.wl)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if self.cl[mid] <= q else (lo, mid)
        return lo


def spec_tables(h: dict, freqs) -> list[Table]:
    """The table of every block (section 5.2)."""
    n = h["n_blocks"]
    if h["prior"] == "uniform":
        return [Table(step=1 << (24 - h["K_bits"]))] * n
    T = len(freqs)
    rows = [Table(spec_weights([int(v) for v in freqs[t]])) for t in range(T)]
    return [rows[b if T > 1 else 0] for b in range(n)]


class SpecDecoder:
    """Section 5.3: one symbol at a time, with the table the caller names."""

    def __init__(self, payload: bytes):
        self.W = [struct.unpack_from("<I", payload, 4 * i)[0] for i in range(len(payload) // 4)]
        self.point, self.nxt, self.lower, self.rng = (self.word(0) << 32) | self.word(1), 2, 0, M64

    def word(self, i):
        return self.W[i] if i < len(self.W) else 0

    def symbol(self, t: Table) -> int:
        scale = self.rng >> 24
        q = ((self.point - self.lower) & M64) // scale
        assert q < 1 << 24
        s = t.find(q)
        self.lower = (self.lower + scale * t.c(s)) & M64
        self.rng = scale * t.w(s)
        while self.rng < 1 << 32:
            self.lower, self.rng = (self.lower << 32) & M64, self.rng << 32
            self.point = ((self.point << 32) & M64) | self.word(self.nxt)
            self.nxt += 1
        return s


def spec_range_decode(payload: bytes, h: dict, tables: list[Table]) -> list[int]:
    d = SpecDecoder(payload)
    return [d.symbol(tables[b]) for b in range(h["n_blocks"]) for _ in range(h["latent_h"] * h["latent_w"])]


def spec_encode(pairs) -> bytes:
    """Section 5.4 over (symbol, table) pairs."""
    L, rng, shifts = 0, M64, 0
    for s, t in pairs:
        scale = rng >> 24
        L += scale * t.c(s)
        rng = scale * t.w(s)
        while rng < 1 << 32:
            L, rng, shifts = L << 32, rng << 32, shifts + 1
    n = shifts + 2
    P = -(-L // (1 << 32)) * (1 << 32)
    words = [(P >> (32 * (n - 1 - i))) & 0xFFFFFFFF for i in range(n)]
    if P + (1 << 32) <= L + rng:
        words = words[:-1]
    return b"".join(struct.pack("<I", x) for x in words)


def spec_range_encode(symbols: list[int], h: dict, tables: list[Table]) -> bytes:
    per_block = h["latent_h"] * h["latent_w"]
    return spec_encode((s, tables[i // per_block]) for i, s in enumerate(symbols))


def spec_prefix_decode(payload: bytes, h: dict, tables: list[Table]) -> list[int]:
    """Section 5.6: the count table, the count map, then the coded indices; -1 where a block is skipped."""
    n, P = h["n_blocks"], h["latent_h"] * h["latent_w"]
    tb = 4 * -(-2 * (n + 1) // 4)
    g = [struct.unpack_from("<H", payload, 2 * i)[0] for i in range(n + 1)]
    assert min(g) >= 1 and payload[2 * (n + 1):tb] == bytes(tb - 2 * (n + 1))
    gt = Table(spec_weights(g))
    d = SpecDecoder(payload[tb:])
    counts = [d.symbol(gt) for _ in range(P)]
    assert sum(counts) == h["symbol_count"]
    out = [-1] * (n * P)
    for b in range(n):
        for p in range(P):
            if counts[p] > b:
                out[b * P + p] = d.symbol(tables[b])
    pairs = [(c, gt) for c in counts] + [(out[b * P + p], tables[b]) for b in range(n) for p in range(P)
                                         if counts[p] > b]
    assert payload[:tb] + spec_encode(pairs) == payload  # canonical
    return out


def spec_raw_decode(payload: bytes, h: dict) -> list[int]:
    k, n = h["K_bits"], h["symbol_count"]
    big = int.from_bytes(payload, "big")
    total = 8 * len(payload)
    assert total - n * k < 8 and big & ((1 << (total - n * k)) - 1) == 0  # zero padding
    return [(big >> (total - (i + 1) * k)) & ((1 << k) - 1) for i in range(n)]


def spec_decode(data: bytes, freqs=None):
    h = spec_header(data)
    payload = data[HEADER_SIZE:]
    if h["coding"] == "raw":
        return h, spec_raw_decode(payload, h)
    weights = spec_tables(h, freqs)
    if h["layout"] == "prefix":
        return h, spec_prefix_decode(payload, h, weights)
    syms = spec_range_decode(payload, h, weights)
    assert spec_range_encode(syms, h, weights) == payload  # canonical (section 5.5)
    return h, syms


# -- the tests ----------------------------------------------------------------------
CASES = [("raw", 1, None), ("raw", 3, None), ("raw", 8, None), ("raw", 13, None), ("raw", 24, None),
         ("range", 1, None), ("range", 7, None), ("range", 16, None), ("range", 23, None),
         ("range", 2, "single"), ("range", 6, "multi"), ("range", 10, "multi"), ("range", 12, "skewed")]


@pytest.mark.parametrize("coding,k,prior_kind", CASES)
def test_independent_decoder_agrees(coding, k, prior_kind):
    rng = np.random.default_rng(k * 31 + len(coding))
    n, lh, lw = (3, 5, 7) if k < 20 else (2, 2, 3)
    prior = None
    if prior_kind == "single":
        prior = Prior(rng.integers(1, 50, size=(1, 1 << k)))
    elif prior_kind == "multi":
        prior = Prior(rng.integers(1, 2**20, size=(n + 1, 1 << k)))
    elif prior_kind == "skewed":
        prior = skewed_prior(rng, 1 << k, n, tau=8.0)
    idx = sample_from_prior(rng, prior, n, lh, lw) if prior_kind == "skewed" else random_indices(rng, k, n, lh, lw)
    header = make_header(k, n, lh, lw, coding, stride=16, color="L", quality=9)
    data = pack(header, idx, prior=prior)
    h, syms = spec_decode(data, None if prior is None else prior.freqs)
    assert syms == idx.reshape(-1).tolist()
    ref = bitstream.read_header(data)
    for key, v in h.items():
        assert getattr(ref, key) == v, key
    if coding == "range":  # the same array with trailing blocks skipped: format v2, prefix layout
        skipped = skip_tail(rng, idx)
        d2 = pack(header, skipped, prior=prior)
        h2, syms2 = spec_decode(d2, None if prior is None else prior.freqs)
        assert (h2["version"], h2["layout"]) == (2, "prefix") and syms2 == skipped.reshape(-1).tolist()
    if prior is not None:
        assert h["prior_id"] == bytes.fromhex(prior.sha256()[:16])
        w = prior.weights()
        for t in range(min(prior.T, 2)):
            assert spec_weights([int(v) for v in prior.freqs[t]]) == w[t].tolist()
    if coding == "range":  # the independent encoder reproduces the payload byte for byte
        weights = spec_tables(h, None if prior is None else prior.freqs)
        assert spec_range_encode(idx.reshape(-1).tolist(), h, weights) == data[HEADER_SIZE:]


def test_prior_sha256_as_specified():
    p = Prior(np.arange(1, 13).reshape(3, 4))
    blob = b"<u4" + struct.pack("<II", 3, 4) + b"".join(struct.pack("<I", v) for v in range(1, 13))
    assert p.sha256() == hashlib.sha256(blob).hexdigest()


def _probe(model, q):
    """Decode one symbol from a payload whose point sits exactly at quantile q (section 5.3)."""
    import constriction

    p = q * (M64 >> 24)
    dec = constriction.stream.queue.RangeDecoder(np.array([p >> 32, p & 0xFFFFFFFF], dtype=np.uint32))
    return int(dec.decode(model, 1)[0])


def test_constriction_models_have_the_specified_cdf():
    """constriction's quantisation of what we pass it equals the integer weights of section 5.2."""
    from bitstream.rangecoder import uniform_model

    rng = np.random.default_rng(0)
    for K in (2, 3, 17, 256, 1000, 4096):
        for f in (rng.integers(1, 2**32 // K // 2, size=(1, K)), rng.integers(1, 4, size=(1, K))):
            prior = Prior(f)
            model, c = prior.model(0), np.concatenate([[0], np.cumsum(prior.weights()[0])])
            for s in (rng.integers(1, K, size=40) if K > 40 else range(1, K)):
                assert _probe(model, int(c[s])) == s and _probe(model, int(c[s]) - 1) == s - 1
            assert _probe(model, 2**24 - 1) == K - 1 and _probe(model, 0) == 0
    for k in range(1, 24):
        model, step = uniform_model(1 << k), 1 << (24 - k)
        for s in set(rng.integers(1, 1 << k, size=20).tolist()):
            assert _probe(model, s * step) == s and _probe(model, s * step - 1) == s - 1


def _splitmix_codebook(seed: int, K: int, m: int) -> np.ndarray:
    """Section 8 in plain Python floats."""
    def mix64(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def draw(n):
        return mix64((seed + (n + 1) * 0x9E3779B97F4A7C15) & M64)

    out = []
    for j in range(K * m):
        a, b = draw(2 * j), draw(2 * j + 1)
        u1 = ((a >> 11) + 0.5) / 2**53
        u2 = (b >> 11) / 2**53
        out.append(math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2))
    return np.array(out, dtype=np.float64).astype(np.float32).reshape(K, m)


def test_codebook_section_matches_generator():
    from gqcodec.codebook import codebook_np

    for seed, K, m in ((0, 4, 2), (0x1234_5678_9ABC_DEF0, 16, 3), (2**64 - 1, 8, 5)):
        assert np.array_equal(_splitmix_codebook(seed, K, m), codebook_np(seed, K, m))


def test_crc_is_iso_hdlc():
    assert bitstream.crc32(b"123456789") == 0xCBF43926


# Frozen files: any change of these digests is a format change and needs a version bump.
GOLDEN = {
    "raw": "065372c4fef639f082b5d8f7f2fa8e8dc4c0ef7b6d3bd4a07ce64c6fc1b79141",
    "range-uniform": "df050294daf1e1af8db49f20526d8aed55dd2f3de210d7044b0c0f0606afd230",
    "range-model": "8ac95b37f154322327ef185017ea84920ba82f5779b49ed72ce068dd918f0430",
    "range-prefix": "bb5a045189d88f585788b351c26c7f204b590757946ae995656215182252a061",  # version 2
}


def _golden_prior():
    counts = np.stack([1000 // (1 + np.arange(64)), 1 + (np.arange(64) * 13) % 50])
    return Prior.from_counts(counts, smoothing=0.5)


def _golden_files():
    # inputs from formulas only (no RNG streams that could change with numpy)
    i = np.arange(2 * 3 * 5)
    idx6 = ((i * 37 + 11) % 64).reshape(2, 3, 5)
    skew = ((i * i) % 7).reshape(2, 3, 5)
    prior = _golden_prior()
    counts_map = (np.arange(15) % 3).reshape(3, 5)  # 0, 1 or 2 coded blocks per position
    h = make_header(6, 2, 3, 5, "raw")
    return {
        "raw": pack(h, idx6),
        "range-uniform": pack(h.replace(coding="range"), idx6),
        "range-model": pack(h.replace(coding="range"), skew, prior=prior),
        "range-prefix": pack(h.replace(coding="range"), np.where(np.arange(2)[:, None, None] < counts_map, skew, -1),
                             prior=prior),
    }


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_files_are_frozen(name):
    data = _golden_files()[name]
    h, syms = spec_decode(data, _golden_prior().freqs)  # and the independent reader reads them
    assert h["version"] == (2 if name == "range-prefix" else 1)
    assert hashlib.sha256(data).hexdigest() == GOLDEN[name], (name, hashlib.sha256(data).hexdigest())
