"""Format v6: block 0 coded with the prior's spatial context model (bitstream.context)."""
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


def test_v6_saves_bits_on_a_predictable_block0():
    """Block 0 drawn from the context model's own distributions codes shorter than with the histogram."""
    rng = np.random.default_rng(2)
    prior = skewed_prior(rng, 256, 1, tau=64)
    cprior = with_context(prior, gain=40000)
    ctx = cprior.context
    idx0 = np.full((12, 12), -1)
    for ys, xs in wavefronts(np.ones((12, 12), dtype=bool)):
        W = ctx.weights(ctx.features(idx0, ys, xs))
        for j in range(len(ys)):
            idx0[ys[j], xs[j]] = rng.choice(256, p=W[j] / 2**24)
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
    wide = pack(make_header(8, 2, 3, 4, "range"), rng.integers(0, 256, (2, 3, 4)), prior=cprior)
    assert bitstream.read_header(wide).version == 3  # escape-coded files keep the histogram


def test_corrupt_v6_payloads_fail_cleanly():
    rng = np.random.default_rng(5)
    cprior = with_context(skewed_prior(rng, 64, 2), gain=20000)
    idx = _prefix(rng.integers(0, 64, (2, 5, 6)), rng.integers(0, 3, (5, 6)))
    data = bytearray(pack(make_header(6, 2, 5, 6, "range"), idx, prior=cprior))
    from test_bitstream_helpers import fix_crcs

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
