"""docs/bitstream.md is a complete spec: an independent pure-Python reader/writer written from it
(no numpy in the codec paths, Python ints only) must agree with the reference implementation."""
from __future__ import annotations

import hashlib
import math
import struct
import zlib
from fractions import Fraction

import numpy as np
import pytest

import bitstream
from bitstream import HEADER_SIZE, Prior, pack
from test_bitstream_helpers import fix_crcs, make_header, random_indices, sample_from_prior, skewed_prior, skip_tail

M64 = (1 << 64) - 1


# -- an independent implementation of docs/bitstream.md ---------------------------
def spec_header(data: bytes) -> dict:
    assert data[:4] == b"\x89GQC" and data[4] in (1, 2, 3, 4, 5, 6, 7)
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
             prior_id=data[80:88], ext_bits=u8(15) if u8(4) >= 3 else 0,
             metadata_length=u32(88) if u8(4) >= 4 else 0)
    assert h["version"] >= 2 or h["layout"] == "dense"
    if h["version"] < 4:  # bytes 88..91 are reserved before v4, metadata_length >= 1 in v4
        assert data[88:92] == b"\0" * 4
    elif h["version"] == 4:
        assert h["metadata_length"] >= 1
    if h["version"] >= 5:  # section 3: range coding only
        assert h["coding"] == "range"
    if h["version"] == 6:  # section 3: the model prior (with its context model), no escape bits
        assert h["prior"] == "model" and h["ext_bits"] == 0
    if h["version"] == 7:  # section 3: the model prior (with its context model) and escape bits
        assert h["prior"] == "model" and h["ext_bits"] >= 1
    if h["version"] < 3:  # byte 15 is reserved in v1 and v2
        assert data[15] == 0
    elif h["version"] == 3 or h["ext_bits"]:  # byte 15 / step 6: escape bits need range coding, model prior
        assert 1 <= h["ext_bits"] < h["K_bits"] and h["coding"] == "range" and h["prior"] == "model"
    assert h["latent_h"] == -(-h["height"] // h["stride"]) and h["latent_w"] == -(-h["width"] // h["stride"])
    if h["layout"] == "dense":
        assert h["symbol_count"] == h["n_blocks"] * h["latent_h"] * h["latent_w"]
    if h["coding"] == "range":  # step 6: words after the count table (prefix) and the escape table (v3)
        tx = spec_table_bytes(h)
        assert h["payload_length"] % 4 == 0 and h["payload_length"] >= 4 + tx[0] + tx[1]
    assert len(data) == HEADER_SIZE + h["payload_length"] + h["metadata_length"]
    assert zlib.crc32(data[HEADER_SIZE:HEADER_SIZE + h["payload_length"]]) == h["payload_crc"]
    return h


def spec_metadata(data: bytes, h: dict) -> dict:
    """Section 5.8: chunks (type, u32 length, bytes) in the order Exif, XMP, then a CRC-32."""
    block = data[HEADER_SIZE + h["payload_length"]:]
    if not block:
        return {}
    body = block[:-4]
    assert zlib.crc32(body) == struct.unpack("<I", block[-4:])[0]
    out, pos, order = {}, 0, [b"Exif", b"XMP "]
    while pos < len(body):
        tag, n = body[pos:pos + 4], struct.unpack_from("<I", body, pos + 4)[0]
        assert tag in order and n >= 1 and pos + 8 + n <= len(body)
        order = order[order.index(tag) + 1:]
        out[{b"Exif": "exif", b"XMP ": "xmp"}[tag]] = body[pos + 8:pos + 8 + n]
        pos += 8 + n
    return out


def spec_table_bytes(h: dict) -> tuple[int, int]:
    """(T, X): bytes of the count table (prefix layout, 5.6) and of the escape table (v3, 5.7) at the payload's start."""
    n = h["n_blocks"]
    T = 4 * -(-2 * (n + 1) // 4) if h["layout"] == "prefix" and h.get("version", 2) < 5 else 0  # v5: no count table
    X = 4 * -(-2 * n // 4) if h["ext_bits"] else 0
    return T, X


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


def spec_u16_table(payload: bytes, offset: int, entries: int, size: int) -> list[int]:
    """``entries`` u16 little-endian values at ``offset``, each >= 1, then zero bytes up to ``size`` (5.6, 5.7)."""
    g = [struct.unpack_from("<H", payload, offset + 2 * i)[0] for i in range(entries)]
    assert min(g) >= 1 and payload[offset + 2 * entries:offset + size] == bytes(size - 2 * entries)
    return g


class SpecEscape:
    """Section 5.7: how one block's coded indices go into the stream of a v3 file."""

    def __init__(self, tables: list[Table], z: list[int], K_bits: int, E: int):
        self.K0, self.K = 1 << (K_bits - E), 1 << K_bits
        self.tables = tables                                          # block b's prior table, K0 entries (5.2)
        self.flags = [Table(spec_weights([v, 65536 - v])) for v in z]  # flag 0: index < K0, flag 1: index >= K0
        self.wide = Table(spec_weights([1] * (self.K - self.K0)))     # all ones over N = K - K0 values

    def decode(self, d: SpecDecoder, b: int, k: int) -> list[int]:
        flags = [d.symbol(self.flags[b]) for _ in range(k)]
        narrow = [d.symbol(self.tables[b]) for f in flags if f == 0]
        wide = [self.K0 + d.symbol(self.wide) for f in flags if f == 1]
        narrow.reverse()
        wide.reverse()
        return [(wide if f else narrow).pop() for f in flags]

    def pairs(self, b: int, syms: list[int]) -> list:
        return ([(int(s >= self.K0), self.flags[b]) for s in syms] + [(s, self.tables[b]) for s in syms if s < self.K0]
                + [(s - self.K0, self.wide) for s in syms if s >= self.K0])

    def code_length(self, b: int, s: int) -> float:
        """The ideal bits of index s in block b: the flag, then the prior table or the wide table."""
        if s < self.K0:
            return 48 - math.log2(self.flags[b].w(0)) - math.log2(self.tables[b].w(s))
        return 48 - math.log2(self.flags[b].w(1)) - math.log2(self.wide.w(s - self.K0))


def spec_escape_decode(payload: bytes, h: dict, freqs) -> list[int]:
    """A v3 payload (sections 5.6, 5.7): [count table] escape table, then one range-coded stream."""
    n, P, k, E = h["n_blocks"], h["latent_h"] * h["latent_w"], h["K_bits"], h["ext_bits"]
    assert all(len(row) == 1 << (k - E) for row in freqs) and (len(freqs) == 1 or len(freqs) >= n)
    T, X = spec_table_bytes(h)
    coder = SpecEscape(spec_tables(h, freqs), spec_u16_table(payload, T, n, X), k, E)
    d = SpecDecoder(payload[T + X:])
    pairs = []
    if h["layout"] == "prefix":
        gt = Table(spec_weights(spec_u16_table(payload, 0, n + 1, T)))
        counts = [d.symbol(gt) for _ in range(P)]
        assert sum(counts) == h["symbol_count"]
        pairs += [(c, gt) for c in counts]
    else:
        counts = [n] * P
    out = [-1] * (n * P)
    for b in range(n):
        pos = [p for p in range(P) if counts[p] > b]
        syms = coder.decode(d, b, len(pos))
        for p, s in zip(pos, syms):
            out[b * P + p] = s
        pairs += coder.pairs(b, syms)
    assert payload[:T + X] + spec_encode(pairs) == payload  # canonical (5.5)
    return out


def spec_prior_id(freqs, select=None) -> bytes:
    """Section 6: the first 8 bytes of SHA-256(b"<u4" + u32le(T) + u32le(K) + entries as u32le, row-major
    [+ b"select" + u32le(B) + select entries as u16le, row-major])."""
    blob = b"<u4" + struct.pack("<II", len(freqs), len(freqs[0]))
    blob += b"".join(struct.pack("<I", int(v)) for row in freqs for v in row)
    if select is not None:
        blob += b"select" + struct.pack("<I", len(select)) + b"".join(struct.pack("<H", int(v)) for r in select for v in r)
    return hashlib.sha256(blob).digest()[:8]


def spec_write_v3(hdr, indices, freqs) -> bytes:
    """An independent v3 writer (sections 1, 5.6, 5.7, 6) with the reference's writer choices for the count
    table and the escape table. ``hdr`` supplies the image/model fields (like ``pack``'s header),
    ``indices`` is a nested (n_blocks, latent_h, latent_w) list with -1 for skipped blocks."""
    n, lh, lw, k = hdr.n_blocks, hdr.latent_h, hdr.latent_w, hdr.K_bits
    P, K0 = lh * lw, len(freqs[0])
    E = k - (K0.bit_length() - 1)
    assert K0 == 1 << (k - E) and E >= 1
    flat = [[indices[b][y][x] for y in range(lh) for x in range(lw)] for b in range(n)]
    counts = [sum(flat[b][p] >= 0 for b in range(n)) for p in range(P)]
    prefix = any(c < n for c in counts)
    h = dict(layout="prefix" if prefix else "dense", n_blocks=n, ext_bits=E)
    T, X = spec_table_bytes(h)
    head, pairs = b"", []
    if prefix:  # 5.6 writer rule: g[v] = max(1, rint(65535 * hist[v] / max(hist)))
        hist = [counts.count(v) for v in range(n + 1)]
        g = [max(1, round(Fraction(65535 * x, max(hist)))) for x in hist]
        head += b"".join(struct.pack("<H", v) for v in g).ljust(T, b"\0")
        gt = Table(spec_weights(g))
        pairs += [(c, gt) for c in counts]
    coded = [[s for s in flat[b] if s >= 0] for b in range(n)]
    # 5.7 writer rule: z = clip(rint(65536 * share below K0), 1, 65535), 32768 for a block with no coded index
    z = [min(65535, max(1, round(Fraction(65536 * sum(s < K0 for s in c), len(c))))) if c else 32768 for c in coded]
    head += b"".join(struct.pack("<H", v) for v in z).ljust(X, b"\0")
    coder = SpecEscape(spec_tables(dict(prior="model", n_blocks=n), freqs), z, k, E)
    for b in range(n):
        pairs += coder.pairs(b, coded[b])
    payload = head + spec_encode(pairs)
    body = b"\x89GQC" + bytes([3, k, hdr.m, hdr.stride, {"L": 1, "RGB": 3}[hdr.color], 1, 1, hdr.quality])
    body += struct.pack("<H", n) + bytes([int(prefix), E]) + hdr.model_id.encode().ljust(16, b"\0")
    body += bytes(hdr.model_hash) + struct.pack("<QIIIIQII", hdr.codebook_seed, hdr.width, hdr.height, lh, lw,
                                                 sum(counts), len(payload), zlib.crc32(payload))
    body += spec_prior_id(freqs) + bytes(4)
    return body + struct.pack("<I", zlib.crc32(body)) + payload


def spec_v5_counts(d: SpecDecoder, h: dict, pairs: list) -> list[int]:
    """Section 5.6, v5: the count map in C order, each count with the adaptive table of its context."""
    n, lh, lw = h["n_blocks"], h["latent_h"], h["latent_w"]
    f = [[1] * (n + 1) for _ in range(6)]
    counts = []
    for y in range(lh):
        for x in range(lw):
            L = counts[-1] if x else None
            U = counts[(y - 1) * lw + x] if y else None
            if L is None and U is None:
                L = U = n // 2
            L, U = (U if L is None else L), (L if U is None else U)
            ctx = min(5, 6 * (L + U) // (2 * n + 1))
            t = Table(spec_weights(f[ctx]))
            v = d.symbol(t)
            pairs.append((v, t))
            counts.append(v)
            f[ctx][v] += 24
            if sum(f[ctx]) > 4096:
                f[ctx] = [(x + 1) // 2 for x in f[ctx]]
    return counts


def spec_v6_block0(d: "SpecDecoder", h: dict, counts: list[int], ctx, pairs: list, got: dict | None = None) -> dict:
    """Section 5.10: block 0 in wavefront order (2y + x, then y), each index with the context model's
    table of its position; returns {position: index}. ``got``: the wide indices a v7 file (5.11) has
    given already, which are features and not decoded again."""
    H, W, m, K = h["latent_h"], h["latent_w"], h["m"], len(ctx["base"])
    q = [[round(32 * float(c)) for c in row] for row in _splitmix_codebook(h["codebook_seed"], 1 << h["K_bits"], m).tolist()]
    lut = [int(2.0 ** (22 - j / 256) + 0.5) for j in range(256)]
    got = dict(got or {})
    order = sorted((p for p in range(H * W) if counts[p] > 0 and p not in got), key=lambda p: (2 * (p // W) + p % W, p // W))
    for p in order:
        y, x = divmod(p, W)
        feats = []
        for dy, dx in ((-1, 0), (0, -1), (-1, -1), (-1, 1), (-2, 0), (0, -2)):
            ny, nx = y + dy, x + dx
            inside = ny >= 0 and 0 <= nx < W
            feats += q[got[ny * W + nx]] if inside and ny * W + nx in got else [0] * m
        t = [max(-2**20, min(2**20, (sum(f * g[dd] for f, g in zip(feats, ctx["G"])) + ctx["g0"][dd]) >> 16))
             for dd in range(m)]
        z = [ctx["base"][i] + sum(a * b for a, b in zip(q[i], t)) for i in range(K)]
        top = z.index(max(z))
        v = [lut[((z[top] - zi) >> 8) & 255] >> min((z[top] - zi) >> 16, 31) for zi in z]
        s = (2**24 - K) / sum(v)
        w = [1 + math.floor(vi * s) for vi in v]
        w[top] += 2**24 - sum(w)
        table = Table(w)
        got[p] = d.symbol(table)
        pairs.append((got[p], table))
    return got


def spec_v5_decode(payload: bytes, h: dict, freqs, select, ctx=None) -> list[int]:
    """Section 5.9 (with 5.6 and 5.7): block b's index at a position coding c blocks uses table select[b][c];
    within a block the flags (escape coding) come first, then the (flag-0) indices grouped by table, ascending,
    then the flag-1 indices."""
    n, P, k, E = h["n_blocks"], h["latent_h"] * h["latent_w"], h["K_bits"], h["ext_bits"]
    assert len(select) >= n and all(len(r) == len(select) + 1 and all(0 <= t < len(freqs) for t in r) for r in select)
    K0 = 1 << (k - E)
    assert all(len(row) == K0 for row in freqs)
    T, X = spec_table_bytes(h)
    rows = [Table(spec_weights([int(v) for v in f])) for f in freqs]
    d = SpecDecoder(payload[T + X:])
    pairs = []
    if h["layout"] == "prefix":
        counts = spec_v5_counts(d, h, pairs)
        assert sum(counts) == h["symbol_count"]
    else:
        counts = [n] * P
    if E:
        z = spec_u16_table(payload, T, n, X)
        flag_t = [Table(spec_weights([v, 65536 - v])) for v in z]
        wide_t = Table(spec_weights([1] * ((1 << k) - K0)))
    out = [-1] * (n * P)
    for b in range(n):
        pos = [p for p in range(P) if counts[p] > b]
        if b == 0 and ctx is not None:  # version 6; version 7 (5.11): flags, wide indices, then the narrow ones
            wide = {}
            if E:
                flags = [d.symbol(flag_t[0]) for _ in pos]
                pairs += [(f, flag_t[0]) for f in flags]
                for p, f in zip(pos, flags):
                    if f:
                        wide[p] = K0 + d.symbol(wide_t)
                        pairs.append((wide[p] - K0, wide_t))
            for p, v in spec_v6_block0(d, h, counts, ctx, pairs, wide).items():
                out[p] = v
            continue
        tab = [int(select[b][counts[p]]) for p in pos]
        flags = [d.symbol(flag_t[b]) for _ in pos] if E else [0] * len(pos)
        if E:
            pairs += [(f, flag_t[b]) for f in flags]
        vals = {}
        narrow = [j for j in range(len(pos)) if flags[j] == 0]
        for t in sorted({tab[j] for j in narrow}):
            for j in narrow:
                if tab[j] == t:
                    vals[j] = d.symbol(rows[t])
                    pairs.append((vals[j], rows[t]))
        for j in range(len(pos)):
            if flags[j]:
                vals[j] = K0 + d.symbol(wide_t)
                pairs.append((vals[j] - K0, wide_t))
        for j, p in enumerate(pos):
            out[b * P + p] = vals[j]
    assert payload[:T + X] + spec_encode(pairs) == payload  # canonical (5.5)
    return out


def spec_decode(data: bytes, freqs=None, select=None, ctx=None):
    h = spec_header(data)
    payload = data[HEADER_SIZE:HEADER_SIZE + h["payload_length"]]
    if h["version"] in (6, 7):
        assert ctx is not None and freqs is not None
        T = len(freqs)
        select = select or [[b if T > 1 else 0] * (h["n_blocks"] + 1) for b in range(h["n_blocks"])]
        return h, spec_v5_decode(payload, h, freqs, select, ctx)
    if h["version"] == 5:
        if freqs is None:  # the uniform prior: one all-ones table for every block
            freqs, select = [[1] * (1 << h["K_bits"])], [[0] * (h["n_blocks"] + 1)] * h["n_blocks"]
        elif select is None:  # a plain prior: block b uses table b (or 0), whatever its count
            T = len(freqs)
            select = [[b if T > 1 else 0] * (h["n_blocks"] + 1) for b in range(h["n_blocks"])]
        return h, spec_v5_decode(payload, h, freqs, select)
    if h["coding"] == "raw":
        return h, spec_raw_decode(payload, h)
    if h["ext_bits"]:
        return h, spec_escape_decode(payload, h, freqs)
    weights = spec_tables(h, freqs)
    if h["layout"] == "prefix":
        return h, spec_prefix_decode(payload, h, weights)
    syms = spec_range_decode(payload, h, weights)
    assert spec_range_encode(syms, h, weights) == payload  # canonical (section 5.5)
    return h, syms


# -- the tests ----------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["raw", "dense", "prefix", "wide"])
def test_independent_reader_agrees_on_metadata_v4(layout):
    rng = np.random.default_rng(4)
    meta = {"exif": b"Exif\0\0II*\0" + bytes(range(30)), "xmp": b"<x:xmpmeta>v4</x:xmpmeta>"}
    k = 10 if layout == "wide" else 8
    prior = None if layout == "raw" else skewed_prior(rng, 1 << 8, 3, tau=8.0)
    idx = random_indices(rng, k, 3, 4, 5) if layout == "wide" else random_indices(rng, 8, 3, 4, 5)
    if layout == "prefix":
        idx = skip_tail(rng, idx)
    data = pack(make_header(k, 3, 4, 5, "raw" if layout == "raw" else "range"), idx, prior=prior, metadata=meta,
                map_coding="table")
    h, syms = spec_decode(data, None if prior is None else prior.freqs)
    ref = bitstream.read_header(data)
    assert h["version"] == 4 and all(getattr(ref, key) == v for key, v in h.items())
    assert syms == idx.reshape(-1).tolist()
    assert spec_metadata(data, h) == bitstream.read_metadata(data) == meta



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
        d2 = pack(header, skipped, prior=prior, map_coding="table")
        h2, syms2 = spec_decode(d2, None if prior is None else prior.freqs)
        assert (h2["version"], h2["layout"]) == (2, "prefix") and syms2 == skipped.reshape(-1).tolist()
        d5 = pack(header, skipped, prior=prior)  # format v5: the count map context coded (5.6)
        h5, syms5 = spec_decode(d5, None if prior is None else prior.freqs)
        assert (h5["version"], h5["layout"]) == (5, "prefix") and syms5 == skipped.reshape(-1).tolist()
    if prior is not None:
        assert h["prior_id"] == bytes.fromhex(prior.sha256()[:16])
        w = prior.weights()
        for t in range(min(prior.T, 2)):
            assert spec_weights([int(v) for v in prior.freqs[t]]) == w[t].tolist()
    if coding == "range":  # the independent encoder reproduces the payload byte for byte
        weights = spec_tables(h, None if prior is None else prior.freqs)
        assert spec_range_encode(idx.reshape(-1).tolist(), h, weights) == data[HEADER_SIZE:]


def _wide_indices(rng, K_bits, E, n, lh, lw, mix, prior):
    """Indices over K = 2**K_bits for a prior of K0 = 2**(K_bits - E) entries: narrow ones drawn from the prior,
    wide ones uniform over [K0, K). ``mix``: "free" (no escapes), "heavy" (90 % escapes), "all" (only escapes),
    "blocks" (block 0 escape-free, block 1 all escapes, the rest half and half)."""
    K0, K = 1 << (K_bits - E), 1 << K_bits
    idx = sample_from_prior(rng, prior, n, lh, lw)
    share = {"free": [0.0] * n, "heavy": [0.9] * n, "all": [1.0] * n, "blocks": [0.0, 1.0] + [0.5] * n}[mix][:n]
    for b in range(n):
        esc = rng.random((lh, lw)) < share[b]
        idx[b][esc] = rng.integers(K0, K, size=int(esc.sum()))
    flat = idx.reshape(-1)
    if mix in ("heavy", "all") and flat.size >= 2:  # the extremes of the wide range
        flat[0], flat[-1] = K - 1, K0
    if mix == "blocks" and lh * lw >= 2:
        idx[0].reshape(-1)[:2] = (0, K0 - 1)
    return idx


V3_CASES = [  # K_bits, ext_bits, (n, lh, lw), layout, mix, tables
    (2, 1, (2, 3, 4), "dense", "blocks", 1),
    (3, 2, (1, 2, 3), "dense", "heavy", 1),
    (6, 2, (3, 4, 5), "dense", "blocks", "multi"),
    (8, 1, (2, 3, 5), "dense", "free", 1),
    (8, 5, (3, 3, 3), "dense", "all", "multi"),
    (10, 3, (4, 3, 4), "prefix", "blocks", "multi"),
    (9, 7, (3, 4, 4), "prefix", "heavy", 1),
    (12, 4, (2, 2, 3), "prefix", "free", "multi"),
    (16, 2, (2, 2, 2), "prefix", "all", 1),
    (7, 3, (3, 3, 4), "prefix-empty-block", "blocks", "multi"),
    (8, 2, (2, 2, 3), "prefix-nothing-coded", "heavy", 1),
]


@pytest.mark.parametrize("K_bits,E,shape,layout,mix,T", V3_CASES)
def test_independent_decoder_agrees_v3(K_bits, E, shape, layout, mix, T):
    """Version 3 (escape coding, section 5.7): the independent reader decodes the reference's files and the
    independent writer reproduces them byte for byte, dense and prefix layout."""
    rng = np.random.default_rng(K_bits * 131 + E * 7 + len(layout))
    n, lh, lw = shape
    K0 = 1 << (K_bits - E)
    prior = skewed_prior(rng, K0, n + 1 if T == "multi" else 1, tau=max(1.0, K0 / 8))
    idx = _wide_indices(rng, K_bits, E, n, lh, lw, mix, prior)
    if layout.startswith("prefix"):
        idx = skip_tail(rng, idx)
        idx[:, 0, 0] = -1  # one position codes nothing
        if layout == "prefix-empty-block":  # the last block codes no index anywhere
            idx[-1] = -1
            idx[:-1, -1, -1] = np.arange(n - 1)
        elif layout == "prefix-nothing-coded":
            idx[:] = -1
        else:
            idx[:, -1, -1] = K0 + np.arange(n) if mix != "free" else np.arange(n)  # and one codes every block
    header = make_header(K_bits, n, lh, lw, "range", stride=16, color="L", quality=9)
    data = pack(header, idx, prior=prior, map_coding="table")
    h, syms = spec_decode(data, prior.freqs)
    assert syms == idx.reshape(-1).tolist()
    assert (h["version"], h["ext_bits"], h["layout"]) == (3, E, "prefix" if layout.startswith("prefix") else "dense")
    ref, out = bitstream.unpack(data, prior=prior)
    assert out.reshape(-1).tolist() == syms
    for key, v in h.items():
        assert getattr(ref, key) == v, key
    assert h["prior_id"] == spec_prior_id(prior.freqs)
    # the independent writer: header and payload byte for byte
    assert spec_write_v3(header, idx.tolist(), prior.freqs.tolist()) == data
    coded = idx >= 0
    z = [struct.unpack_from("<H", data, HEADER_SIZE + spec_table_bytes(h)[0] + 2 * b)[0] for b in range(n)]
    for b in range(n):  # the escape table says what the blocks hold (clipped to 1..65535, 32768 for none)
        below = idx[b][coded[b]] < K0
        assert z[b] == (32768 if below.size == 0 else 65535 if below.all() else 1 if not below.any()
                        else round(65536 * below.mean()))
    if mix == "free":
        assert idx.max() < K0 and all(v == 65535 for v in z)
    if layout == "prefix-empty-block":
        assert z[-1] == 32768
    if layout == "prefix-nothing-coded":
        assert h["symbol_count"] == 0 and z == [32768] * n


def test_escape_code_lengths_as_specified():
    """The code length bullet of 5.7, from the spec's tables, equals the reference's wide_code_lengths."""
    rng = np.random.default_rng(17)
    for K_bits, E, T, z in ((4, 1, 1, [1, 65535]), (6, 2, 3, [32768, 7, 60000]), (10, 7, 1, [12345])):
        prior = skewed_prior(rng, 1 << (K_bits - E), T, tau=3.0)
        n = len(z)
        coder = SpecEscape(spec_tables(dict(prior="model", n_blocks=n), prior.freqs), z, K_bits, E)
        ref = bitstream.wide_code_lengths(prior, K_bits, np.array(z, dtype=np.uint16), n)
        for b in range(n):
            mine = [coder.code_length(b, s) for s in range(1 << K_bits)]
            assert np.allclose(mine, ref[b], rtol=0, atol=1e-9)
        assert bitstream.escape_table(np.array([[[0, 1 << (K_bits - E)]]]), 1 << (K_bits - E)).tolist() == [32768]


def _v3_files():
    rng = np.random.default_rng(33)
    out = {}
    for layout in ("dense", "prefix"):
        prior = skewed_prior(rng, 16, 3, tau=2.0)
        idx = _wide_indices(rng, 7, 3, 3, 3, 4, "blocks", prior)
        if layout == "prefix":
            idx = skip_tail(rng, idx)
        out[layout] = (pack(make_header(7, 3, 3, 4, "range"), idx, prior=prior, map_coding="table"), prior)
    return out


def _both(data, prior):
    """(reference outcome, independent outcome): the decoded list, or "rejected"."""
    try:
        ref = bitstream.unpack(data, prior=prior)[1].reshape(-1).tolist()
    except bitstream.FormatError:
        ref = "rejected"
    try:
        mine = spec_decode(data, prior.freqs)[1]
    except Exception:  # the independent reader rejects with assertions, lookups, ...
        mine = "rejected"
    return ref, mine


def test_independent_reader_accepts_and_rejects_like_the_reference_v3():
    """CRC-consistent payload garbage in v3 files (escape table, count table, words): the two readers agree on
    every file, the ones they reject and the ones they decode (to the same indices)."""
    rng = np.random.default_rng(4242)
    seen = {"rejected": 0, "decoded": 0}
    for layout, (data, prior) in _v3_files().items():
        T, X = spec_table_bytes(spec_header(data))
        for t in range(120):
            b = bytearray(data)
            where = t % 3  # 0: the tables, 1: the words, 2: one escape entry set to an arbitrary value
            if where == 0:
                b[HEADER_SIZE + int(rng.integers(0, T + X))] = int(rng.integers(0, 256))
            elif where == 1:
                b[HEADER_SIZE + T + X + int(rng.integers(0, len(data) - HEADER_SIZE - T - X))] = int(rng.integers(0, 256))
            else:
                e = HEADER_SIZE + T + 2 * int(rng.integers(0, 3))
                b[e:e + 2] = struct.pack("<H", int(rng.choice([0, 1, 2, 32768, 65534, 65535])))
            ref, mine = _both(fix_crcs(bytes(b)), prior)
            assert ref == mine, (layout, t)
            seen["rejected" if ref == "rejected" else "decoded"] += 1
    assert seen["rejected"] > 50 and seen["decoded"] > 5, seen


def _conditional_prior(rng, K, B, extra, tau=3.0):
    """A count-conditioned prior: B representative tables plus ``extra`` more, a random selection."""
    base = skewed_prior(rng, K, B + extra, tau=tau)
    return Prior(base.freqs, rng.integers(0, B + extra, size=(B, B + 1)))


V5_CASES = [  # K_bits, ext_bits, (n, lh, lw), layout, metadata, B
    (6, 0, (3, 4, 5), "dense", False, 3),
    (6, 0, (3, 4, 5), "prefix", False, 4),
    (8, 0, (2, 3, 3), "prefix", True, 2),
    (7, 3, (3, 3, 4), "dense", False, 3),
    (9, 2, (4, 3, 4), "prefix", False, 5),
    (8, 2, (3, 4, 4), "prefix", True, 3),
]


@pytest.mark.parametrize("K_bits,E,shape,layout,meta,B", V5_CASES)
def test_independent_decoder_agrees_v5(K_bits, E, shape, layout, meta, B):
    """Version 5 (count-conditioned tables, section 5.9): the independent reader decodes the reference's files,
    dense and prefix, with and without escape coding and metadata; the prior id covers the selection."""
    rng = np.random.default_rng(K_bits * 97 + E * 5 + B + len(layout))
    n, lh, lw = shape
    K0 = 1 << (K_bits - E)
    prior = _conditional_prior(rng, K0, B, extra=3, tau=max(1.0, K0 / 8))
    idx = _wide_indices(rng, K_bits, E, n, lh, lw, "blocks", prior) if E else sample_from_prior(rng, prior, n, lh, lw)
    if layout == "prefix":
        idx = skip_tail(rng, idx)
    metadata = {"xmp": b"<x:xmpmeta>v5</x:xmpmeta>"} if meta else None
    data = pack(make_header(K_bits, n, lh, lw, "range", quality=7), idx, prior=prior, metadata=metadata)
    h, syms = spec_decode(data, prior.freqs.tolist(), prior.select.tolist())
    assert syms == idx.reshape(-1).tolist()
    assert (h["version"], h["ext_bits"], h["layout"]) == (5, E, layout)
    assert h["prior_id"] == spec_prior_id(prior.freqs, prior.select.tolist()) == prior.prior_id
    ref, out = bitstream.unpack(data, prior=prior)
    assert out.reshape(-1).tolist() == syms and all(getattr(ref, key) == v for key, v in h.items())
    assert (spec_metadata(data, h) == metadata) if meta else h["metadata_length"] == 0


V7_CASES = [  # K_bits, ext_bits, (n, lh, lw), layout, mix, B (0: a plain prior)
    (8, 2, (2, 4, 5), "dense", "heavy", 0),
    (7, 1, (3, 3, 4), "prefix", "blocks", 0),
    (8, 3, (2, 3, 3), "prefix", "all", 3),
    (6, 2, (3, 4, 4), "dense", "free", 4),
]


@pytest.mark.parametrize("K_bits,E,shape,layout,mix,B", V7_CASES)
def test_independent_decoder_agrees_v7(K_bits, E, shape, layout, mix, B):
    """Version 7 (section 5.11: block 0's flags, its wide indices, then its narrow ones with the context, wide
    neighbours' codewords as features): the independent reader decodes the reference's files."""
    from test_bitstream_helpers import context_model

    rng = np.random.default_rng(K_bits * 31 + E * 7 + B + len(mix))
    n, lh, lw = shape
    K0 = 1 << (K_bits - E)
    base = _conditional_prior(rng, K0, B, extra=2) if B else skewed_prior(rng, K0, n)
    prior = Prior(base.freqs, base.select, context_model(K0, gain=20000))
    idx = _wide_indices(rng, K_bits, E, n, lh, lw, mix, prior)
    if mix == "blocks":  # block 0 with some wide indices too
        idx[0][rng.random((lh, lw)) < 0.4] = K0 + 1
    if layout == "prefix":
        idx = skip_tail(rng, idx)
    data = pack(make_header(K_bits, n, lh, lw, "range", quality=9), idx, prior=prior)
    ctx = {"G": prior.context.G.tolist(), "g0": prior.context.g0.tolist(), "base": prior.context.base.tolist()}
    h, syms = spec_decode(data, prior.freqs.tolist(), None if prior.select is None else prior.select.tolist(), ctx)
    assert syms == idx.reshape(-1).tolist()
    assert (h["version"], h["ext_bits"], h["layout"]) == (7, E, layout)
    assert bitstream.unpack(data, prior=prior)[1].reshape(-1).tolist() == syms


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
    "range-wide": "01fa666236a58c60615b6962ae688fe164776bae5b0fbd6f25af80db727df527",  # version 3: prefix layout, 2 escape bits
    "range-meta": "d104d9e07b20c4d4b207b79db6365f4f9472214403abd788c09b68e99fe8d496",  # version 4: range-model + EXIF, XMP
    "range-counts": "743098adda9eedcdd1c2919c4d83b8574d13b818d69e035ff27c2da3bf7e9a8d",  # version 5: the range-prefix file with a count-conditioned prior
    "range-prefix-v5": "b6e140ad264bc0a9c0e513980767d6aa0b0adcde7fa1fb3d57838e5020f7e32e",  # version 5: the range-prefix file, its count map context coded
    "range-context-v6": "ae7956ddf351f542dabf9d64a08548ef1792cfe1901c83501076e68b7d199e46",  # version 6: the range-prefix-v5 file with block 0 coded by a spatial context model
    "range-context-dense": "023488e8f79fc7b6bab2edacdca49233f1cfb740999ad172f9a98326308f65cd",  # version 6, dense layout
    "range-context-wide": "a816e40f947edc03a88b20f7d63eee649e2d3987eec50f869ab9fb80da064e17",  # version 7: escape coding (2 bits) with block 0's context
}
GOLDEN_VERSION = {"raw": 1, "range-uniform": 1, "range-model": 1, "range-prefix": 2, "range-wide": 3, "range-meta": 4,
                  "range-counts": 5, "range-prefix-v5": 5, "range-context-v6": 6, "range-context-dense": 6,
                  "range-context-wide": 7}


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
                             prior=prior, map_coding="table"),
        "range-prefix-v5": pack(h.replace(coding="range"), np.where(np.arange(2)[:, None, None] < counts_map, skew, -1),
                                prior=prior),
        # K = 2**8 over the 2**6-entry prior tables: indices 0..255, about a quarter below 64
        "range-wide": pack(h.replace(coding="range", K_bits=8), np.where(np.arange(2)[:, None, None] < counts_map,
                                                                         ((i * 37 + 11) % 256).reshape(2, 3, 5), -1),
                           prior=prior, map_coding="table"),
        # v4: the range-model file plus both metadata chunks
        "range-meta": pack(h.replace(coding="range"), skew, prior=prior,
                           metadata={"exif": b"Exif\0\0MM\0*\0\0\0\x08\0\0", "xmp": b"<x:xmpmeta>gq</x:xmpmeta>"}),
        "range-counts": pack(h.replace(coding="range"), np.where(np.arange(2)[:, None, None] < counts_map, skew, -1),
                             prior=_golden_counts_prior()),
        "range-context-v6": pack(h.replace(coding="range"), np.where(np.arange(2)[:, None, None] < counts_map, skew, -1),
                                 prior=_golden_context_prior()),
        "range-context-dense": pack(h.replace(coding="range"), idx6, prior=_golden_context_prior()),
        # v7: the range-wide indices with block 0 coded by the context (escape coding kept)
        "range-context-wide": pack(h.replace(coding="range", K_bits=8),
                                   np.where(np.arange(2)[:, None, None] < counts_map,
                                            ((i * 37 + 11) % 256).reshape(2, 3, 5), -1), prior=_golden_context_prior()),
    }


def _golden_context_prior():
    from test_bitstream_helpers import with_context

    return with_context(_golden_prior(), gain=20000)


def _golden_counts_prior():
    """The golden prior's two tables plus a third; block 0 at positions coding 2 blocks uses table 2."""
    p = _golden_prior()
    return Prior(np.concatenate([p.freqs, p.freqs[:1, ::-1]]), np.array([[0, 0, 2], [1, 1, 1]]))


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_files_are_frozen(name):
    data = _golden_files()[name]
    p = {"range-counts": _golden_counts_prior(), "range-context-v6": _golden_context_prior(),
         "range-context-dense": _golden_context_prior(), "range-context-wide": _golden_context_prior()}.get(name, _golden_prior())
    ctx = None if p.context is None else {"G": p.context.G.tolist(), "g0": p.context.g0.tolist(),
                                          "base": p.context.base.tolist()}
    h, syms = spec_decode(data, p.freqs.tolist(), None if p.select is None else p.select.tolist(), ctx)  # and the independent reader reads them
    assert syms == bitstream.unpack(data, prior=p)[1].reshape(-1).tolist()
    assert h["version"] == GOLDEN_VERSION[name] and h["ext_bits"] == (2 if name in ("range-wide", "range-context-wide") else 0)
    assert hashlib.sha256(data).hexdigest() == GOLDEN[name], (name, hashlib.sha256(data).hexdigest())
    if name == "range-wide":  # the independent writer produces the frozen v3 file too
        hdr, idx = bitstream.unpack(data, prior=_golden_prior())
        assert spec_write_v3(hdr, idx.tolist(), _golden_prior().freqs.tolist()) == data
        assert syms == idx.reshape(-1).tolist() and 0 < (idx[idx >= 0] < 64).mean() < 1
