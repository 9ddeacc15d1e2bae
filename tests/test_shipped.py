"""The shipped default model: present, consistent with its registry entry, and a working codec."""
import numpy as np
import pytest
from PIL import Image

import bitstream
import gqcodec
from gqcodec import zoo
from gqcodec.metrics import psnr_rgb

pytestmark = pytest.mark.skipif(not zoo.REGISTRY_FILE.exists(), reason="no shipped model")


def smooth_image(h=96, w=128):
    yy, xx = np.mgrid[:h, :w]
    img = np.stack([120 + 80 * np.sin(xx / 17), 100 + 60 * np.cos(yy / 11), (xx + yy) % 256 * 0.5 + 60], -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_registry_entry_is_complete():
    e = zoo.entry()
    assert (zoo.WEIGHTS_DIR / e["weights"]).exists() and (zoo.WEIGHTS_DIR / e["prior"]).exists()
    model = zoo.load_model()
    assert model.config.to_dict() == e["config"]
    assert sorted(int(q) for q in e["ladder"]) == list(range(1, len(e["ladder"]) + 1))
    assert max(e["ladder"].values()) <= model.config.blocks
    prior = zoo.load_prior()
    assert prior.T == model.config.blocks and prior.K == model.config.K
    from gqcodec.codec import MAX_EXT_BITS

    for q, kb in e.get("index_bits", {}).items():  # wide qualities: decodable, with an escape-share guess
        assert q in e["ladder"] and model.config.K_bits <= kb <= model.config.K_bits + MAX_EXT_BITS
        assert 0 < e.get("escape_share", {}).get(q, 0.5) < 1


def test_registry_kodak_numbers_match_the_published_results():
    """Every quality of every shipped model has one measured Kodak point, rate and PSNR rise with quality, and
    the numbers are those of the results JSON in docs/results/kodak (so a changed setting cannot keep stale
    numbers in `gqcodec models` without the published results changing too)."""
    import json
    from pathlib import Path

    results = Path(__file__).resolve().parents[1] / "docs" / "results" / "kodak"
    for name, e in zoo.read_registry()["models"].items():
        points = {p["quality"]: p for p in e["kodak"]}
        assert sorted(points) == sorted(int(q) for q in e["ladder"]), name
        qs = sorted(points)
        assert all(points[a]["bpp"] < points[b]["bpp"] and points[a]["psnr-rgb"] < points[b]["psnr-rgb"]
                   for a, b in zip(qs, qs[1:])), name
        published = results / f"gqcodec-{name}.json"
        if not published.exists():
            continue
        res = json.loads(published.read_text())["results"]
        for i, q in enumerate(res["quality"]):
            for key in ("bpp", "psnr-rgb", "ms-ssim-rgb"):
                assert points[int(q)][key] == pytest.approx(res[key][i], abs=1e-5), (name, q, key)


def test_default_model_round_trip_quality_grows_with_rate():
    img = smooth_image()
    codec = gqcodec.load()
    sizes, psnrs = [], []
    for q in (codec.qualities[0], codec.qualities[-1]):
        data = codec.compress(img, quality=q)
        h = bitstream.read_header(data)
        assert h.model_id == zoo.default_name() and h.model_hash == zoo.model_hash()
        assert h.K_bits == codec.index_bits(q)
        out = np.asarray(gqcodec.decompress(data))
        sizes.append(len(data))
        psnrs.append(psnr_rgb(img, out))
    assert sizes[1] > sizes[0]
    assert psnrs[1] > psnrs[0] > 20.0


def test_range_coding_beats_raw_with_the_shipped_prior():
    img = smooth_image()
    raw = gqcodec.compress(img, mode="raw")
    rng = gqcodec.compress(img, mode="range", rdoq=0, adaptive=False)  # the same indices as raw, entropy coded
    assert len(rng) < len(raw)
    assert np.array_equal(np.asarray(gqcodec.decompress(raw)), np.asarray(gqcodec.decompress(rng)))
    tuned = gqcodec.compress(img, mode="range", adaptive=False)  # the shipped RDOQ strength
    assert len(tuned) < len(rng)


def test_shipped_adaptive_rate_beats_dense_on_a_half_flat_image():
    """The shipped strengths: on an image that is flat on one side the adaptive file skips blocks there,
    is smaller, and its Lagrangian cost (the encoder's own objective, on the real decode) is lower."""
    img = smooth_image(128, 192)
    img[:, :96] = (90, 140, 200)  # a flat sky on the left
    codec = gqcodec.load()
    q = codec.default_quality
    lam = codec.adaptive_lambda(q)
    assert lam is not None
    dense = codec.compress(img, quality=q, adaptive=False)
    adapt = codec.compress(img, quality=q)
    h, idx = bitstream.unpack(adapt, prior=codec.prior)
    counts = (idx >= 0).sum(axis=0)
    assert h.version == (6 if codec.prior.context is not None else 5)  # v6: block 0 context coded
    assert counts[:, :6].mean() < counts[:, 6:].mean()
    assert len(adapt) < len(dense)
    cost = {}
    for name, data in (("dense", dense), ("adaptive", adapt)):
        out = np.asarray(gqcodec.decompress(data)).astype(np.float64)
        cost[name] = ((out - img) ** 2).sum() + lam * 8 * (len(data) - bitstream.HEADER_SIZE)
    assert cost["adaptive"] < cost["dense"]
