"""The codec with a model whose prior has block 0's context model: v6 by default (v7 for a quality
with a wide codebook), v5/v3/v1 with ``context=False`` / ``--fast-decode``, the same indices and
picture either way."""
import numpy as np
import pytest
from click.testing import CliRunner

import bitstream
from bitstream import Prior


@pytest.fixture
def ctx_codec(tmp_path, monkeypatch):
    from fakezoo import installed_codec
    from test_bitstream_helpers import copy_context

    from gqcodec import codec, zoo

    gen = installed_codec(tmp_path / "w", monkeypatch, rdoq=1.0, adaptive_lambda={"1": 50.0, "2": 50.0, "3": 20.0, "4": 20.0},
                          ladder={"1": 1, "2": 2, "3": 3, "4": 3}, index_bits={"4": 10}, rdoq_by_quality={"4": 0.0},
                          escape_share={"4": 0.6})
    c = next(gen)
    path = zoo.WEIGHTS_DIR / "tiny.prior.npz"
    p = Prior.load(path)
    Prior(p.freqs, p.select, copy_context(p, seed=5)).save(path)
    zoo._cache.clear()
    codec._codecs.clear()
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
