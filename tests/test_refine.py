"""Decoder-checked index refinement (encoder only): lower squared error + lambda * bits, same format."""
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import bitstream
from gqcodec import codec, zoo
from gqcodec.cli import main
from gqcodec.codec import Codec

LAM = {"1": 40.0, "2": 40.0, "3": 40.0}


@pytest.fixture
def refining(tmp_path, monkeypatch):
    from fakezoo import installed_codec

    yield from installed_codec(tmp_path / "w", monkeypatch, ladder={"1": 1, "2": 2, "3": 3, "4": 3}, rdoq=1.0,
        adaptive_lambda={**LAM, "4": 40.0}, index_bits={"4": 10},
        refine={"iters": 2, "top": 8, "alpha": 20.0, "by_quality": {"1": {"iters": 0}}})


def image(h=80, w=112, seed=11):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:h, :w]
    a = np.stack([(x * 2 + y) % 256, (y * 3) % 256, 128 + 60 * np.sin(x / 7.0)], axis=2)
    a = a + rng.normal(0, 20, a.shape)
    return np.clip(a, 0, 255).astype(np.uint8)


def cost(c, a, data, lam):
    """squared error + lam * ideal bits of the coded indices, what refinement lowers."""
    _, idx = bitstream.unpack(data, prior=c.prior)
    out = np.asarray(c.decompress(data)).astype(np.float64)
    coded = np.where(idx >= 0, idx, 0)
    bits = (c.prior.code_lengths(coded) * (idx >= 0)).sum()
    return ((out - a) ** 2).sum() + lam * bits, idx


@pytest.mark.parametrize("tile", [codec.TILE, 32])  # 32: 2 x 3 latents per tile, refined tile by tile
def test_refinement_lowers_the_cost_and_keeps_the_layout(tmp_path, monkeypatch, tile):
    from fakezoo import install

    install(tmp_path / "w", monkeypatch, ladder={"1": 1, "2": 2, "3": 3}, rdoq=1.0, adaptive_lambda=LAM,
            refine={"iters": 3, "top": 8, "alpha": 20.0})
    c = Codec("tiny", tile=tile)
    a = image()
    for q in (2, 3):
        plain, refined = c.compress(a, quality=q, refine=0), c.compress(a, quality=q)
        j0, i0 = cost(c, a, plain, 40.0)
        j1, i1 = cost(c, a, refined, 40.0)
        assert bitstream.read_header(refined).version == bitstream.read_header(plain).version
        assert np.array_equal(i0 < 0, i1 < 0)           # skipped blocks stay skipped
        assert (i0 != i1).sum() > 0 and j1 < j0, (q, (i0 != i1).sum(), j0, j1)
    zoo._cache.clear()
    codec._codecs.clear()


def test_settings_come_from_the_registry(refining):
    a = image()
    assert refining.refine_settings(2) == (2, 8, 20.0)
    assert refining.refine_settings(1) == (0, 8, 20.0)   # per-quality override
    assert refining.compress(a, quality=2) == refining.compress(a, quality=2, refine=2)
    assert refining.compress(a, quality=2) != refining.compress(a, quality=2, refine=0)
    assert refining.compress(a, quality=1) == refining.compress(a, quality=1, refine=0)
    with pytest.raises(codec.CodecError, match="refine"):
        refining.compress(a, quality=2, refine=-1)


def test_refinement_applies_only_to_range_coded_narrow_qualities(refining):
    a = image()
    assert refining.compress(a, quality=2, mode="raw") == refining.compress(a, quality=2, mode="raw", refine=0)
    assert refining.compress(a, quality=4) == refining.compress(a, quality=4, refine=0)  # 2**10 codebook
    assert refining.compress(a, quality=2, adaptive=False) != refining.compress(a, quality=2, adaptive=False, refine=0)


def test_compress_many_matches_refined_single_encodes(refining):
    a = image()
    assert refining.compress_many(a) == {q: refining.compress(a, quality=q) for q in refining.qualities}


def test_cli_refine_option(refining, tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(image()).save(src)
    r = CliRunner()
    for n in ("0", "2"):
        res = r.invoke(main, ["compress", str(src), str(tmp_path / f"r{n}.gqc"), "-q", "2", "--refine", n])
        assert res.exit_code == 0, res.output
    assert (tmp_path / "r2.gqc").read_bytes() == refining.compress(image(), quality=2, refine=2)
    assert (tmp_path / "r0.gqc").read_bytes() == refining.compress(image(), quality=2, refine=0)
    res = r.invoke(main, ["compress", str(src), str(tmp_path / "bad.gqc"), "--refine", "-1"])
    assert res.exit_code != 0 and not (tmp_path / "bad.gqc").exists()


def test_skipped_blocks_stay_skipped(tmp_path, monkeypatch):
    from fakezoo import install

    install(tmp_path / "w", monkeypatch, ladder={"1": 1, "2": 2, "3": 3}, rdoq=1.0, adaptive_lambda={"3": 1e4},
            refine={"iters": 3, "top": 8, "alpha": 20.0})
    c = Codec("tiny")
    a = image()
    j0, i0 = cost(c, a, c.compress(a, quality=3, refine=0), 1e4)
    j1, i1 = cost(c, a, c.compress(a, quality=3), 1e4)
    assert (i0 < 0).any() and (i0 >= 0).any()   # an adaptive layout with skipped and coded blocks
    assert np.array_equal(i0 < 0, i1 < 0) and j1 <= j0
    zoo._cache.clear()
    codec._codecs.clear()
