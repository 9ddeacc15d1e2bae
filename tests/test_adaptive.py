"""Spatially adaptive rate: per-position block counts chosen by the encoder (format v2 prefix layout)."""
import numpy as np
import pytest
from PIL import Image

import bitstream
import gqcodec
from gqcodec import codec
from gqcodec.codec import Codec


@pytest.fixture
def tuned(tmp_path, monkeypatch):
    from fakezoo import installed_codec

    yield from installed_codec(tmp_path / "w", monkeypatch, adaptive_lambda={"1": 1e9, "2": 50.0})


def image(h=96, w=128, seed=3):
    rng = np.random.default_rng(seed)
    a = np.full((h, w, 3), 128, dtype=np.uint8)
    a[:, w // 2:] = rng.integers(0, 256, (h, w - w // 2, 3), dtype=np.uint8)  # flat left, noise right
    return a


def test_pick_counts_minimises_the_lagrangian():
    rng = np.random.default_rng(0)
    n, h, w = 4, 5, 6
    se = np.sort(rng.random((n + 1, h, w)) * 1000, axis=0)[::-1].copy()  # error falls with more blocks
    bits = np.concatenate([np.zeros((1, h, w)), np.cumsum(rng.random((n, h, w)) * 10 + 1, axis=0)])
    assert (Codec.pick_counts(se, bits, 0.0) == n).all()          # rate is free: keep everything
    assert (Codec.pick_counts(se, bits, 1e9) == 0).all()          # rate is everything: keep nothing
    lam = 20.0
    c = Codec.pick_counts(se, bits, lam)
    J = se + lam * bits
    first = J.argmin(axis=0)  # second pass: the map's cost in the contexts of the first pass's map
    ctx = bitstream.countmap.contexts(first, n)
    hist = np.ones((6, n + 1))
    for k, v in zip(ctx.ravel(), first.ravel()):
        hist[k, v] += 24
    cost = -np.log2(hist / hist.sum(axis=1, keepdims=True))
    J2 = J + lam * np.stack([cost[ctx, v] for v in range(n + 1)])
    assert np.array_equal(c, J2.argmin(axis=0))
    se[2, 0, 0] = -1.0  # a count whose error is lowest wins even if more blocks come after it
    assert Codec.pick_counts(se, bits, 0.0)[0, 0] == 2


def test_count_costs_match_real_decodes(tuned):
    a = image(40, 56)
    idx = tuned.encode_array(a, 2)
    se, bits = tuned.count_costs(a, idx)
    assert se.shape == bits.shape == (3, 3, 4)
    for c in range(3):
        trial = idx.copy()
        trial[c:] = -1
        out = tuned.decode_array(trial, 40, 56).astype(np.float64)
        assert se[c].sum() == pytest.approx(((out - a) ** 2).sum())
    assert (bits[0] == 0).all() and (np.diff(bits, axis=0) > 0).all()
    assert bits[2].sum() == pytest.approx(tuned.prior.bits(idx), rel=1e-9)


def test_adaptive_files_are_v5_and_decode(tuned):
    a = image()
    dense = tuned.compress(a, quality=2, adaptive=False)
    adapt = tuned.compress(a, quality=2)          # default: on, the registry has a strength for q2
    assert bitstream.read_header(dense).version == 1
    h = bitstream.read_header(adapt)
    assert (h.version, h.layout, h.n_blocks, h.quality) == (5, "prefix", 2, 2)
    assert h.symbol_count < 2 * h.latent_h * h.latent_w
    _, idx = bitstream.unpack(adapt, prior=tuned.prior)
    counts = (idx >= 0).sum(axis=0)
    assert np.array_equal(counts, tuned.choose_counts(a, tuned.encode_array(a, 2, tuned.rdoq_for(2)), 50.0))
    out = np.asarray(gqcodec.decompress(adapt))
    assert np.array_equal(out, tuned.decode_array(idx, *a.shape[:2]))
    # the choice is the Lagrangian optimum of its own estimate, so it never costs more than dense
    se, bits = tuned.count_costs(a, tuned.encode_array(a, 2, tuned.rdoq_for(2)))
    full = se[2].sum() + 50.0 * bits[2].sum()
    chosen = np.take_along_axis(se + 50.0 * bits, counts[None], 0).sum()
    assert chosen <= full


def test_huge_lambda_skips_everything(tuned):
    data = tuned.compress(image(), quality=1)
    h, idx = bitstream.unpack(data, prior=tuned.prior)
    assert h.symbol_count == 0 and (idx == -1).all()
    out = np.asarray(gqcodec.decompress(data))
    assert out.shape == (96, 128, 3)  # the prior mean, decoded


def test_adaptive_needs_range_coding_and_a_strength(tuned):
    with pytest.raises(codec.CodecError, match="range coding"):
        tuned.compress(image(), quality=2, mode="raw", adaptive=True)
    with pytest.raises(codec.CodecError, match="no tuned adaptive-rate strength"):
        tuned.compress(image(), quality=3, adaptive=True)
    assert bitstream.read_header(tuned.compress(image(), quality=3)).version == 1  # untuned quality: dense
    assert bitstream.read_header(tuned.compress(image(), quality=2, mode="raw")).version == 1


def test_cli_adaptive_and_dense(tuned, tmp_path):
    from click.testing import CliRunner

    from gqcodec.cli import main

    src = tmp_path / "a.png"
    Image.fromarray(image()).save(src)
    r = CliRunner()
    res = r.invoke(main, ["compress", str(src), str(tmp_path / "a.gqc"), "-q", "2"])
    assert res.exit_code == 0 and "range, adaptive)" in res.output
    res = r.invoke(main, ["compress", str(src), str(tmp_path / "b.gqc"), "-q", "2", "--dense"])
    assert res.exit_code == 0 and "range)" in res.output
    assert (tmp_path / "a.gqc").read_bytes()[4] == 5 and (tmp_path / "b.gqc").read_bytes()[4] == 1
    res = r.invoke(main, ["compress", str(src), str(tmp_path / "c.gqc"), "--raw", "--adaptive"])
    assert res.exit_code != 0 and "range coding" in res.output and not (tmp_path / "c.gqc").exists()
    res = r.invoke(main, ["info", str(tmp_path / "a.gqc")])
    assert "prefix" in res.output
    res = r.invoke(main, ["decompress", str(tmp_path / "a.gqc"), str(tmp_path / "a.png.out.png")])
    assert res.exit_code == 0
