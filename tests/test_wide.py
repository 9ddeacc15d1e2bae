"""Wide indices: qualities that search a codebook wider than the model's prior (format v3, escape coding)."""
import numpy as np
import pytest
import torch

import bitstream
from gqcodec import codec, zoo
from gqcodec.codebook import codebook_np, codebook_rows
from gqcodec.codec import Codec, CodecError
from gqcodec.model import STRIDE


@pytest.fixture
def wide(tmp_path, monkeypatch):
    from fakezoo import installed_codec

    yield from installed_codec(tmp_path / "w", monkeypatch, ladder={"1": 1, "2": 2, "3": 3, "4": 3},
        index_bits={"4": 10}, rdoq_by_quality={"4": 0.0}, adaptive_lambda={"2": 1e9, "4": 50.0},
        escape_share={"4": 0.6})


def image(h=80, w=112, seed=4):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:h, :w]
    a = np.stack([(x * 2) % 256, (y * 3) % 256, (x + y) % 256], axis=2).astype(np.int16)
    a[h // 2:] += rng.integers(-40, 40, (h - h // 2, w, 3))
    return np.clip(a, 0, 255).astype(np.uint8)


def test_codebook_rows_equal_the_generated_codebook():
    cb = codebook_np(7, 1 << 12, 5)
    rows = np.array([[0, 4095], [17, 256]])
    assert np.array_equal(codebook_rows(7, rows, 5), cb[rows])
    assert np.array_equal(codebook_np(7, 1 << 10, 5), cb[:1 << 10])  # codebooks nest
    with pytest.raises(ValueError):
        codebook_rows(7, [-1], 5)


def test_wide_quality_writes_escapes_and_decodes_with_the_wide_codebook(wide):
    rgb = image()
    for adaptive, layout, version in ((False, "dense", 3), (True, "prefix", 5)):
        data = wide.compress(rgb, quality=4, adaptive=adaptive)
        h, idx = bitstream.unpack(data, wide.prior)
        assert (h.version, h.K_bits, h.ext_bits, h.layout) == (version, 10, 2, layout)
        assert idx.max() >= 256  # some indices use the widened part of the codebook
        out = np.array(wide.decompress(data))
        # the reference decode: the latent from the 2**10-row codebook, through the synthesis
        m = wide.model
        cb = torch.from_numpy(np.array(codebook_np(m.config.seed, 1 << 10, m.config.m)))
        z = m.latent_from_indices(torch.from_numpy(idx)[None], lambda t: cb[t])
        ref = m.g_s(z)[0].clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        assert np.array_equal(out, ref[:rgb.shape[0], :rgb.shape[1]])


def test_wide_rdoq_bias_is_the_escape_coding_cost(wide):
    bias = wide.rdoq_bias(2.0, 10, 0.6).cpu().numpy()
    assert bias.shape == (3, 1024)
    z = np.full(3, round(0.6 * 65536))
    bits = np.stack(bitstream.wide_code_lengths(wide.prior, 10, z, 3))
    assert np.allclose(bias, -2.0 * np.log(2.0) * bits)
    # the rate-optimised search at a wide quality still gives a decodable v3 file
    data = wide.compress(image(), quality=4, rdoq=2.0)
    h = bitstream.read_header(data)
    assert h.ext_bits == 2 and h.version == (5 if h.layout == "prefix" else 3)
    assert np.array(wide.decompress(data)).shape == image().shape


def test_narrow_qualities_still_write_v1_and_v5(wide):
    rgb = image()
    assert bitstream.read_header(wide.compress(rgb, quality=3)).version == 1
    assert bitstream.read_header(wide.compress(rgb, quality=2)).version == 5


def test_raw_mode_at_a_wide_quality(wide):
    rgb = image()
    data = wide.compress(rgb, quality=4, mode="raw")
    h = bitstream.read_header(data)
    assert (h.version, h.K_bits, h.coding) == (1, 10, "raw")
    assert h.payload_length == -(-3 * h.positions * 10 // 8)
    assert np.array(wide.decompress(data)).shape == rgb.shape


def test_wider_search_never_scores_worse(wide):
    m = wide.model
    torch.manual_seed(1)
    mu, lv = torch.randn(300, m.config.m), torch.randn(300, m.config.m) * 0.5 - 1
    narrow, wider = wide.quantizer(8), wide.quantizer(10)
    assert narrow is m.quantizer
    assert torch.equal(wider.codebook[:256], narrow.codebook)

    def score(q, idx):
        c = q.codebook[idx].double()
        w = torch.exp(-lv.double())
        return (mu.double() * w * c).sum(1) - 0.5 * ((w - 1) * c * c).sum(1)

    assert bool((score(wider, wider.quantize(mu, lv)) >= score(narrow, narrow.quantize(mu, lv)) - 1e-9).all())


def test_code_lengths_predict_the_file_size(wide):
    rgb = image(96, 128)
    idx = wide.encode_array(rgb, 3, 0.0, 10)
    bits = bitstream.prefix_bits(wide.prior, idx, 10)[-1].sum()  # all 3 blocks at every position
    h = bitstream.Header(model_id="tiny", model_hash=wide.hash, codebook_seed=5, K_bits=10, m=16, stride=STRIDE,
                         n_blocks=3, latent_h=idx.shape[1], latent_w=idx.shape[2], width=128, height=96)
    data = bitstream.pack(h, idx, wide.prior)
    words = 8 * (bitstream.read_header(data).payload_length - 8)  # minus the escape table (3 u16, padded to 8 bytes)
    assert bits - 64 <= words <= bits + 96  # the coder's flush: at most 64 bits, rounded up to 32-bit words


def test_files_with_codebooks_the_model_cannot_hold_are_rejected(wide):
    rgb = image()
    data = wide.compress(rgb, quality=3, mode="raw")
    h, idx = bitstream.unpack(data)
    for kb in (7, 8 + codec.MAX_EXT_BITS + 1):
        bad = bitstream.pack(h.replace(K_bits=kb), idx % 128)
        with pytest.raises(CodecError, match="codebook"):
            wide.decompress(bad)


def test_wide_quality_needs_a_prior_for_range_coding(tmp_path, monkeypatch):
    from fakezoo import install

    install(tmp_path / "w", monkeypatch, with_prior=False, index_bits={"3": 10})
    c = Codec("tiny")
    with pytest.raises(CodecError, match="prior"):
        c.compress(image(), quality=3)
    assert bitstream.read_header(c.compress(image(), quality=3, mode="raw")).K_bits == 10
    zoo._cache.clear()
    codec._codecs.clear()
