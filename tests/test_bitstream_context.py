"""Formats v6 and v7: block 0 coded with the prior's spatial context model (bitstream.context)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import bitstream
from bitstream import FormatError, Prior, pack, unpack
from bitstream.context import LUT, LUT_SUM, NEIGHBOURS, SpatialContext, neighbour_features, qcodebook, wavefronts
from test_bitstream_helpers import context_model, make_header, skewed_prior, with_context


def test_lut_matches_its_definition():
    assert int(LUT.sum()) == LUT_SUM and LUT[0] == 1 << 22 and np.all(np.diff(LUT) < 0)


def reference_weights(ctx: SpatialContext, feats: list[int]) -> list[int]:
    """The module docstring's recipe in Python integers and floats, one position."""
    q = qcodebook(ctx.seed, ctx.K, ctx.m).astype(np.int64).tolist()
    G, g0, base = ctx.G.tolist(), ctx.g0.tolist(), ctx.base.tolist()
    t = [max(-2**20, min(2**20, (sum(f * G[j][d] for j, f in enumerate(feats)) + g0[d]) >> 16)) for d in range(ctx.m)]
    z = [base[i] + sum(q[i][d] * t[d] for d in range(ctx.m)) for i in range(ctx.K)]
    top = z.index(max(z))
    v = [int(LUT[((z[top] - zi) >> 8) & 255]) >> min((z[top] - zi) >> 16, 31) for zi in z]
    s = (2**24 - ctx.K) / sum(v)
    w = [1 + int(vi * s) for vi in v]
    w[top] += 2**24 - sum(w)
    return w


@pytest.mark.parametrize("K,gain", [(64, 3000), (256, 20000), (64, 0)])
def test_weights_match_the_reference_and_sum_to_2_24(K, gain):
    ctx = context_model(K, gain=gain)
    rng = np.random.default_rng(K + gain)
    idx0 = rng.integers(0, K, (4, 5))
    idx0[0, 1] = -1  # a neighbour that codes no block
    ys, xs = np.nonzero(np.ones_like(idx0, dtype=bool))
    X = ctx.features(idx0, ys, xs)
    W = ctx.weights(X)
    assert W.shape == (20, K) and np.all(W >= 1) and np.all(W.sum(axis=1) == 2**24)
    for p in (0, 6, 19):
        assert W[p].tolist() == reference_weights(ctx, X[p].tolist())
    if gain:  # the context matters: positions with different neighbours get different tables
        assert len({W[p].tobytes() for p in range(20)}) > 10


def test_features_are_the_neighbours_codewords():
    ctx = context_model(64)
    q = qcodebook(ctx.seed, 64, 16)
    idx0 = np.arange(12).reshape(3, 4)
    idx0[1, 1] = -1
    f = neighbour_features(q, idx0, np.array([2]), np.array([2])).reshape(len(NEIGHBOURS), 16)
    for k, (dy, dx) in enumerate(NEIGHBOURS):
        y, x = 2 + dy, 2 + dx
        assert np.array_equal(f[k], q[idx0[y, x]] if idx0[y, x] >= 0 else np.zeros(16))
    f = neighbour_features(q, idx0, np.array([0]), np.array([0]))
    assert not f.any()  # the first position has no neighbours


@pytest.mark.parametrize("h,w", [(1, 1), (1, 7), (6, 1), (5, 9)])
def test_wavefronts_code_every_neighbour_first(h, w):
    coded = (np.arange(h * w).reshape(h, w) % 4) != 3
    seen = np.zeros((h, w), dtype=bool)
    for ys, xs in wavefronts(coded):
        for y, x in zip(ys, xs):
            for dy, dx in NEIGHBOURS:
                if 0 <= y + dy < h and 0 <= x + dx < w and coded[y + dy, x + dx]:
                    assert seen[y + dy, x + dx]
        seen[ys, xs] = True  # a wavefront's positions do not depend on each other
    assert np.array_equal(seen, coded)


def _prefix(idx, counts):
    return np.where(np.arange(idx.shape[0])[:, None, None] < counts, idx, -1)


@pytest.mark.parametrize("layout", ["dense", "prefix"])
def test_v6_round_trip_and_same_indices_as_v5(layout):
    rng = np.random.default_rng(1)
    prior = skewed_prior(rng, 256, 3)
    cprior = with_context(prior, gain=20000)
    idx = rng.integers(0, 256, (3, 6, 7))
    if layout == "prefix":
        idx = _prefix(idx, rng.integers(0, 4, (6, 7)))
    h = make_header(8, 3, 6, 7, "range")
    v6 = pack(h, idx, prior=cprior)
    v5 = pack(h, idx, prior=cprior, spatial=False)
    assert bitstream.read_header(v6).version == 6
    assert bitstream.read_header(v5).version == (5 if layout == "prefix" else 1)
    assert v5 != v6
    for data in (v5, v6):
        hh, back = unpack(data, cprior)
        assert np.array_equal(back, idx)


def _drawn_from_context(rng, K: int, tau: float):
    """A context prior over K indices and a 12x12 block 0 drawn, wavefront by wavefront, from its own
    distributions."""
    cprior = with_context(skewed_prior(rng, K, 1, tau=tau), gain=40000)
    ctx = cprior.context
    idx0 = np.full((12, 12), -1)
    for ys, xs in wavefronts(np.ones((12, 12), dtype=bool)):
        W = ctx.weights(ctx.features(idx0, ys, xs))
        for j in range(len(ys)):
            idx0[ys[j], xs[j]] = rng.choice(K, p=W[j] / 2**24)
    return cprior, idx0


def test_v6_saves_bits_on_a_predictable_block0():
    """Block 0 drawn from the context model's own distributions codes shorter than with the histogram."""
    rng = np.random.default_rng(2)
    cprior, idx0 = _drawn_from_context(rng, 256, 64)
    ctx = cprior.context
    h = make_header(8, 1, 12, 12, "range")
    assert len(pack(h, idx0[None], prior=cprior)) < 0.9 * len(pack(h, idx0[None], prior=cprior, spatial=False))
    bits = ctx.code_lengths(idx0, np.ones((12, 12), dtype=bool))
    W = ctx.weights(ctx.features(idx0, *np.nonzero(np.ones((12, 12), dtype=bool))))
    assert np.allclose(bits.reshape(-1), 24 - np.log2(W[np.arange(144), idx0.reshape(-1)]))


def test_v6_needs_the_context_prior():
    rng = np.random.default_rng(3)
    prior = skewed_prior(rng, 64, 2)
    cprior = with_context(prior)
    idx = rng.integers(0, 64, (2, 3, 4))
    data = pack(make_header(6, 2, 3, 4, "range"), idx, prior=cprior)
    assert cprior.prior_id != prior.prior_id
    with pytest.raises(FormatError, match="prior mismatch"):
        unpack(data, prior)
    other = with_context(prior, gain=1000)
    with pytest.raises(FormatError, match="prior mismatch"):
        unpack(data, other)
    # a prior claiming the file's id but without a context: rejected before decoding
    fake = Prior(prior.freqs)
    fake._sha = cprior.sha256()
    with pytest.raises(FormatError, match="needs a prior with block 0's context model"):
        unpack(data, fake)


def test_v6_rejects_raw_uniform_and_escape_headers():
    from bitstream.header import validate

    h = dataclasses.replace(make_header(6, 2, 3, 4, "range"), version=6, prior="uniform", symbol_count=24,
                            payload_length=8, payload_crc=0, prior_id=bytes(8))
    with pytest.raises(FormatError, match="version 6 files are coded with the model prior"):
        validate(h, FormatError)
    with pytest.raises(FormatError, match="version 6 files are range coded"):
        validate(dataclasses.replace(h, coding="raw", prior="uniform"), FormatError)


def test_writer_falls_back_without_a_usable_context():
    rng = np.random.default_rng(4)
    cprior = with_context(skewed_prior(rng, 64, 2))
    idx = rng.integers(0, 64, (2, 3, 4))
    assert bitstream.read_header(pack(make_header(6, 2, 3, 4, "raw"), idx, prior=cprior)).version == 1
    assert bitstream.read_header(pack(make_header(6, 2, 3, 4, "range"), idx)).version == 1  # uniform prior
    pre = _prefix(idx, rng.integers(0, 3, (3, 4)))
    assert bitstream.read_header(pack(make_header(6, 2, 3, 4, "range"), pre, prior=cprior,
                                      map_coding="table")).version == 2
    wide = rng.integers(0, 256, (2, 3, 4))
    assert bitstream.read_header(pack(make_header(8, 2, 3, 4, "range"), wide, prior=cprior)).version == 7
    # escape coding without the context: v3 (dense), v5 (prefix, context-coded count map)
    assert bitstream.read_header(pack(make_header(8, 2, 3, 4, "range"), wide, prior=cprior, spatial=False)).version == 3
    assert bitstream.read_header(pack(make_header(8, 2, 3, 4, "range"), _prefix(wide, np.full((3, 4), 1)),
                                      prior=cprior, spatial=False)).version == 5


def test_prior_file_round_trip(tmp_path):
    rng = np.random.default_rng(6)
    cprior = with_context(skewed_prior(rng, 64, 2))
    cprior.save(tmp_path / "p.npz")
    back = Prior.load(tmp_path / "p.npz")
    assert back == cprior and back.sha256() == cprior.sha256() and back.context is not None
    assert np.array_equal(back.context.G, cprior.context.G) and back.context.qsha == cprior.context.qsha
    plain = Prior(cprior.freqs)
    assert plain != cprior and plain.sha256() != cprior.sha256()
    with np.load(tmp_path / "p.npz") as z:
        arrays = {k: z[k] for k in z.files}
    assert str(arrays["format"]) == "gqcodec-prior-v3"
    arrays["format"] = np.array("gqcodec-prior-v1")
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(FormatError, match="has 'ctx_"):
        Prior.load(tmp_path / "bad.npz")
    arrays["format"] = np.array("gqcodec-prior-v3")
    arrays["ctx_G"] = arrays["ctx_G"][:-1]
    np.savez(tmp_path / "bad2.npz", **arrays)
    with pytest.raises(FormatError):
        Prior.load(tmp_path / "bad2.npz")


def test_a_wrong_integer_codebook_is_refused():
    ctx = context_model(64)
    bad = SpatialContext(ctx.seed, ctx.m, ctx.G, ctx.g0, ctx.base, "0" * 64)
    with pytest.raises(FormatError, match="integer codebook does not match"):
        bad.weights(np.zeros((1, len(NEIGHBOURS) * 16), dtype=np.int64))


def test_truncate_keeps_the_files_choice_of_context():
    rng = np.random.default_rng(7)
    cprior = with_context(skewed_prior(rng, 64, 3), gain=20000)
    idx = rng.integers(0, 64, (3, 4, 5))
    h = make_header(6, 3, 4, 5, "range")
    v6, plain = pack(h, idx, prior=cprior), pack(h, idx, prior=cprior, spatial=False)
    for data, want in ((v6, 6), (plain, 5)):
        small = bitstream.truncate(data, 2, prior=cprior, counts=np.full((4, 5), 1))
        assert bitstream.read_header(small).version == want
        assert np.array_equal(unpack(small, cprior)[1][0], idx[0])


def _escaped(rng, K0, K, shape, share):
    idx = rng.integers(0, K0, shape)
    esc = rng.random(shape) < share
    idx[esc] = rng.integers(K0, K, int(esc.sum()))
    return idx


@pytest.mark.parametrize("layout,share", [("dense", 0.3), ("prefix", 0.5), ("dense", 0.0), ("dense", 1.0),
                                          ("prefix-no-block0", 0.4)])
def test_v7_round_trip_and_same_indices_as_v3_v5(layout, share):
    """Escape-coded files (K = 2**8 over a 64-entry prior) with the context: version 7, the same
    indices as without it, whatever the share of wide indices in block 0 (none, some, all)."""
    rng = np.random.default_rng(int(share * 10) + len(layout))
    cprior = with_context(skewed_prior(rng, 64, 3), gain=20000)
    idx = _escaped(rng, 64, 256, (3, 6, 7), share)
    if layout == "prefix":
        idx = _prefix(idx, rng.integers(0, 4, (6, 7)))
    elif layout == "prefix-no-block0":  # no position codes any block: every block empty
        idx = _prefix(idx, np.zeros((6, 7), dtype=np.int64))
    h = make_header(8, 3, 6, 7, "range")
    v7 = pack(h, idx, prior=cprior)
    old = pack(h, idx, prior=cprior, spatial=False)
    assert bitstream.read_header(v7).version == 7 and bitstream.read_header(v7).ext_bits == 2
    assert bitstream.read_header(old).version == (3 if layout == "dense" else 5)
    for data in (v7, old):
        assert np.array_equal(unpack(data, cprior)[1], idx)
    small = bitstream.truncate(v7, 2, prior=cprior)
    assert bitstream.read_header(small).version == 7 and np.array_equal(unpack(small, cprior)[1], idx[:2])


def test_v7_uses_wide_neighbours_as_features():
    """A wide neighbour's codeword is a feature of the narrow positions next to it: the narrow
    indices' code lengths depend on which wide index sits beside them (and match the stream)."""
    from bitstream.codebook import codebook_rows
    from bitstream.container import EscapedBlock0, WideBlocks
    from bitstream.rangecoder import encode_chunks

    rng = np.random.default_rng(11)
    cprior = with_context(skewed_prior(rng, 64, 1), gain=40000)
    idx0 = rng.integers(0, 64, (4, 5))
    coded = np.ones((4, 5), dtype=bool)
    narrow = coded.copy()
    narrow[0, 0] = False
    bits = set()
    for w in (64, 100, 200, 255):
        idx0[0, 0] = w
        b0 = EscapedBlock0(cprior.context, WideBlocks(cprior, 8, np.full(1, 32768)))
        r, view = b0._narrow_view(idx0, ~narrow)
        assert r[0, 0] == 64 and np.array_equal(r[narrow], idx0[narrow])
        feats = view.features(r, np.array([0, 1]), np.array([1, 0]))  # left of (0, 1), up of (1, 0): the wide one
        want = np.rint(32 * codebook_rows(cprior.context.seed, np.array([w]), 16).astype(np.float64))[0]
        assert np.array_equal(feats[0, 16:32], want) and np.array_equal(feats[1, :16], want)
        bits.add(round(float(view.code_lengths(r, narrow).sum()), 6))
        back, done = b0.decode(bitstream.rangecoder._decoder(encode_chunks(b0.chunks(idx0, coded))), coded)
        assert np.array_equal(back, idx0)
    assert len(bits) == 4


def test_v7_saves_bits_over_v3_on_a_predictable_block0():
    rng = np.random.default_rng(12)
    cprior, idx0 = _drawn_from_context(rng, 64, 16)
    idx0[rng.random((12, 12)) < 0.1] = 64 + rng.integers(0, 192)
    h = make_header(8, 1, 12, 12, "range")
    v7, v3 = pack(h, idx0[None], prior=cprior), pack(h, idx0[None], prior=cprior, spatial=False)
    assert bitstream.read_header(v7).version == 7 and len(v7) < 0.9 * len(v3)


def test_v7_header_rules_and_a_context_free_prior():
    from bitstream.header import validate

    h = dataclasses.replace(make_header(8, 2, 3, 4, "range"), version=7, prior="model", symbol_count=24,
                            payload_length=12, payload_crc=0, prior_id=bytes(8), ext_bits=0)
    with pytest.raises(FormatError, match="version 7 files are coded with the model prior, with escape bits"):
        validate(h, FormatError)
    with pytest.raises(FormatError, match="are coded with the model prior"):
        validate(dataclasses.replace(h, ext_bits=2, prior="uniform"), FormatError)
    rng = np.random.default_rng(13)
    prior = skewed_prior(rng, 64, 2)
    cprior = with_context(prior)
    data = pack(make_header(8, 2, 3, 4, "range"), _escaped(rng, 64, 256, (2, 3, 4), 0.3), prior=cprior)
    fake = Prior(prior.freqs)
    fake._sha = cprior.sha256()
    with pytest.raises(FormatError, match="version 7 file needs a prior with block 0's context model"):
        unpack(data, fake)


@pytest.mark.parametrize("version", [6, 7])
def test_corrupt_v6_v7_payloads_fail_cleanly(version):
    """Every flipped payload byte of a prefix-layout v6 file, or of a v7 file (K = 2**8 over the 64-entry
    prior, 30 % of the indices wide), fails with FormatError or decodes to other indices."""
    from test_bitstream_helpers import fix_crcs

    rng = np.random.default_rng(5 if version == 6 else 14)
    cprior = with_context(skewed_prior(rng, 64, 2), gain=20000)
    raw = rng.integers(0, 64, (2, 5, 6)) if version == 6 else _escaped(rng, 64, 256, (2, 5, 6), 0.3)
    idx = _prefix(raw, rng.integers(0, 3, (5, 6)))
    data = pack(make_header(6 if version == 6 else 8, 2, 5, 6, "range"), idx, prior=cprior)
    assert bitstream.read_header(data).version == version
    failures = 0
    for pos in range(96, len(data)):
        bad = bytearray(data)
        bad[pos] ^= 0x5A
        try:
            h, back = unpack(fix_crcs(bytes(bad)), cprior)
        except FormatError:
            failures += 1
        else:  # a flipped word that still decodes must decode to other indices (canonical payloads)
            assert not np.array_equal(back, idx)
    assert failures > 0
