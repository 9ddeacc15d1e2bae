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


def test_default_model_round_trip_quality_grows_with_rate():
    img = smooth_image()
    codec = gqcodec.load()
    sizes, psnrs = [], []
    for q in (codec.qualities[0], codec.qualities[-1]):
        data = codec.compress(img, quality=q)
        h = bitstream.read_header(data)
        assert h.model_id == zoo.default_name() and h.model_hash == zoo.model_hash()
        out = np.asarray(gqcodec.decompress(data))
        sizes.append(len(data))
        psnrs.append(psnr_rgb(img, out))
    assert sizes[1] > sizes[0]
    assert psnrs[1] > psnrs[0] > 20.0


def test_range_coding_beats_raw_with_the_shipped_prior():
    img = smooth_image()
    raw = gqcodec.compress(img, mode="raw")
    rng = gqcodec.compress(img, mode="range", rdoq=0)  # the same indices as raw, entropy coded
    assert len(rng) < len(raw)
    assert np.array_equal(np.asarray(gqcodec.decompress(raw)), np.asarray(gqcodec.decompress(rng)))
    tuned = gqcodec.compress(img, mode="range")  # the default: the shipped RDOQ strength
    assert len(tuned) < len(rng)
