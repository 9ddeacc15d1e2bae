"""The codec with a model whose prior has block 0's context model: v6 by default (v7 for a quality
with a wide codebook), v5/v3/v1 with ``context=False`` / ``--fast-decode``, the same indices and
picture either way."""
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import bitstream
from bitstream import Prior


@pytest.fixture
def ctx_codec(tmp_path, monkeypatch):
    from fakezoo import add_context, installed_codec

    from gqcodec import codec

    gen = installed_codec(tmp_path / "w", monkeypatch, rdoq=1.0, adaptive_lambda={"1": 50.0, "2": 50.0, "3": 20.0, "4": 20.0},
                          ladder={"1": 1, "2": 2, "3": 3, "4": 3}, index_bits={"4": 10}, rdoq_by_quality={"4": 0.0},
                          escape_share={"4": 0.6})
    next(gen)
    add_context()
    yield codec.Codec("tiny")
    next(gen, None)


def _image():
    yy, xx = np.mgrid[:64, :96]
    img = np.stack([100 + 60 * np.sin(xx / 9), 120 + 50 * np.cos(yy / 7), (xx + yy) % 200], -1).astype(np.uint8)
    img[:, :40] = (90, 140, 200)
    return img


@pytest.mark.parametrize("adaptive", [True, False])
def test_context_is_the_default_and_can_be_turned_off(ctx_codec, adaptive):
    assert ctx_codec.prior.context is not None
    v6 = ctx_codec.compress(_image(), quality=2, adaptive=adaptive)
    fast = ctx_codec.compress(_image(), quality=2, adaptive=adaptive, context=False)
    assert bitstream.read_header(v6).version == 6
    hf = bitstream.read_header(fast)
    assert hf.version == (5 if hf.layout == "prefix" else 1) and (adaptive or hf.layout == "dense")
    assert np.array_equal(bitstream.unpack(v6, ctx_codec.prior)[1], bitstream.unpack(fast, ctx_codec.prior)[1])
    assert np.array_equal(np.asarray(ctx_codec.decompress(v6)), np.asarray(ctx_codec.decompress(fast)))
    many = ctx_codec.compress_many(_image(), [1, 2], adaptive=adaptive, context=False)
    assert many[2] == fast and bitstream.read_header(many[1]).version != 6
    sized = ctx_codec.compress(_image(), max_bytes=len(fast), adaptive=adaptive, context=False)
    assert bitstream.read_header(sized).version != 6 and len(sized) <= len(fast)


def test_cli_fast_decode(ctx_codec, tmp_path):
    from PIL import Image

    from gqcodec.cli import main as cli

    Image.fromarray(_image()).save(tmp_path / "a.png")
    r = CliRunner()
    for flag, want in (([], 6), (["--fast-decode"], 5)):  # 5: a v5 (adaptive) or v1 (dense) file
        out = tmp_path / f"a{want}.gqc"
        res = r.invoke(cli, ["compress", str(tmp_path / "a.png"), str(out), "-q", "2"] + flag)
        assert res.exit_code == 0, res.output
        assert (bitstream.read_header(out.read_bytes()).version == 6) == (want == 6)
        res = r.invoke(cli, ["decompress", str(out), str(tmp_path / f"a{want}.png")])
        assert res.exit_code == 0, res.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a6.png")), np.asarray(Image.open(tmp_path / "a5.png")))


@pytest.mark.parametrize("adaptive", [True, False])
def test_wide_quality_writes_the_smaller_of_v7_and_v3_v5(ctx_codec, adaptive):
    """A quality searching 2**10 codewords over the prior's 2**8 (escape coding): the codec writes block 0
    with the context (v7) or without (v5 / v3), whichever file is smaller (the histogram's on a tie), with
    the same indices and picture as ``context=False``."""
    data = ctx_codec.compress(_image(), quality=4, adaptive=adaptive)
    old = ctx_codec.compress(_image(), quality=4, adaptive=adaptive, context=False)
    h, ho = bitstream.read_header(data), bitstream.read_header(old)
    assert (h.ext_bits, h.K_bits) == (2, 10) and ho.version == (5 if ho.layout == "prefix" else 3)
    idx = bitstream.unpack(old, ctx_codec.prior)[1]
    v7 = bitstream.pack(ho, idx, ctx_codec.prior)
    assert bitstream.read_header(v7).version == 7 and np.array_equal(bitstream.unpack(v7, ctx_codec.prior)[1], idx)
    assert data == (v7 if len(v7) < len(old) else old)
    assert np.array_equal(np.asarray(ctx_codec.decompress(data)), np.asarray(ctx_codec.decompress(old)))


def test_the_context_is_dropped_where_it_does_not_pay(ctx_codec, monkeypatch):
    """With a context model that predicts badly (formula weights, not fitted), the codec writes the
    histogram's file (v1), which is smaller than the v6 file of the same indices."""
    from test_bitstream_helpers import with_context

    bad = with_context(Prior(ctx_codec.prior.freqs, ctx_codec.prior.select), seed=5, gain=20000)
    monkeypatch.setattr(ctx_codec, "prior", bad)
    data = ctx_codec.compress(_image(), quality=2, adaptive=False)
    h, idx = bitstream.unpack(data, bad)
    v6 = bitstream.pack(h, idx, bad)
    assert bitstream.read_header(v6).version == 6 and h.version == 1 and len(data) < len(v6)


def _posterior(h=5, w=7, m=16, seed=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(h, w, m, generator=g) * 1.5, torch.rand(h, w, m, generator=g) * 3 - 3.5


def test_context_search_at_zero_strength_is_the_plain_search(ctx_codec):
    """Wavefront order and position bookkeeping: with no rate term every position gets the GQ search's codeword."""
    mu, lv = _posterior()
    quant = ctx_codec.model.quantizer
    got = ctx_codec._context_search(quant, ctx_codec.prior.context, mu, lv, 0.0)
    want = quant.quantize(mu.reshape(-1, 16), lv.reshape(-1, 16)).numpy().reshape(5, 7)
    assert np.array_equal(got, want)


def test_context_search_maximises_score_plus_context_rate(ctx_codec):
    """Each position's index is the argmax over the whole codebook of the GQ score plus
    gamma * ln 2 * 2**-16 * (base_i + 32 c_i . t), t from the neighbours chosen before it (checked by
    brute force in float64, in raster order, which also visits every neighbour first)."""
    from bitstream.context import QSCALE

    ctx = ctx_codec.prior.context
    mu, lv = _posterior(seed=4)
    quant = ctx_codec.model.quantizer
    gamma = 2.0
    got = ctx_codec._context_search(quant, ctx, mu, lv, gamma)
    cb = quant.codebook.double().numpy()
    scale = gamma * np.log(2.0) / 65536
    idx = np.full(got.shape, -1, dtype=np.int64)
    for y in range(got.shape[0]):
        for x in range(got.shape[1]):
            t = ctx.tilt(ctx.features(idx, np.array([y]), np.array([x])))[0].astype(np.float64)
            w = np.exp(-lv[y, x].double().numpy())
            score = cb @ (mu[y, x].double().numpy() * w) - 0.5 * (cb ** 2) @ (w - quant.beta)
            obj = score + scale * (ctx.base + QSCALE * cb @ t)
            assert got[y, x] == int(np.argmax(obj)) or obj[got[y, x]] >= obj.max() - 1e-9
            idx[y, x] = got[y, x]
    assert not np.array_equal(got, ctx_codec._context_search(quant, ctx, mu, lv, 0.0))


def test_context_rdoq_scale_from_the_registry(tmp_path, monkeypatch):
    """``context_rdoq.scale`` > 0 searches block 0 under the context model: v6 files whose block 0 costs
    fewer context bits than the histogram search's and that decode; absent, block 0 is the histogram
    search's (the same indices as ``context=False``)."""
    from fakezoo import add_context, installed_codec

    from gqcodec import codec

    gen = installed_codec(tmp_path / "w", monkeypatch, rdoq=1.0, context_rdoq={"scale": 4.0})
    next(gen)
    add_context()
    c = codec.Codec("tiny")
    assert c.context_rdoq_scale == 4.0
    ctx = c.prior.context
    data = c.compress(_image(), quality=2, adaptive=False)
    fast = c.compress(_image(), quality=2, adaptive=False, context=False)
    c.context_rdoq_scale = 0.0
    plain = c.compress(_image(), quality=2, adaptive=False)
    i_ctx, i_fast, i_plain = (bitstream.unpack(d, c.prior)[1] for d in (data, fast, plain))
    assert np.array_equal(i_fast, i_plain) and not np.array_equal(i_ctx[0], i_plain[0])
    assert np.array_equal(i_ctx[1:], i_plain[1:])  # the other blocks' searches are unchanged
    coded = np.ones(i_ctx.shape[1:], dtype=bool)
    assert ctx.code_lengths(i_ctx[0], coded).sum() < ctx.code_lengths(i_plain[0], coded).sum()
    assert bitstream.read_header(data).version == 6
    assert np.asarray(c.decompress(data)).shape == _image().shape
    next(gen, None)
