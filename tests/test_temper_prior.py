"""tools/temper_prior.py and tools/clone_model.py: a tempered prior fits the indices adaptive files
code, and ships under a new model name while the old model's files keep decoding."""
import json

import numpy as np
import pytest

from bitstream import Prior
from fakezoo import load_tool as _tool


temper = _tool("temper_prior")
clone_tool = _tool("clone_model")


def _peaked_prior(T=3, K=256, seed=0):
    rng = np.random.default_rng(seed)
    return Prior.from_counts(rng.zipf(1.6, (T, K)).clip(max=10_000), 0.5)


def test_fit_recovers_the_temperature_the_indices_were_drawn_with():
    prior = _peaked_prior()
    logp = np.log2(prior.weights().astype(np.float64))
    rng = np.random.default_rng(1)
    true = [0.6, 0.9]
    kept = {}
    for q, n in ((1, 1), (2, 2)):  # block 2 is coded by no quality
        kept[q] = [rng.choice(prior.K, 20_000, p=np.exp2(temper.tempered_logp(logp[b], true[b]))) for b in range(n)]
    taus, report = temper.fit_taus(prior, kept)
    assert abs(taus[0] - 0.6) <= 0.06 and abs(taus[1] - 0.9) <= 0.06 and taus[2] == 1.0
    for r in report.values():
        assert r["bits_per_index_new"] < r["bits_per_index_old"]
    # and when the indices follow the prior itself, tempering finds nothing to change
    same = {1: [rng.choice(prior.K, 20_000, p=np.exp2(temper.tempered_logp(logp[0], 1.0)))]}
    assert abs(temper.fit_taus(prior, same)[0][0] - 1.0) <= 0.04


def test_tempered_tables_are_the_prior_at_tau_one_and_flatter_below():
    prior = _peaked_prior()
    assert np.array_equal(temper.tempered_prior(prior, np.ones(prior.T)).weights(), prior.weights())
    flat = temper.tempered_prior(prior, np.array([0.5, 1.0, 1.0]))
    assert flat.weights()[0].max() < prior.weights()[0].max() and flat.weights()[0].min() > prior.weights()[0].min()
    assert np.array_equal(flat.weights()[1:], prior.weights()[1:]) and flat.prior_id != prior.prior_id


def test_clone_then_temper_ships_a_new_model_and_old_files_still_decode(tmp_path, monkeypatch):
    from fakezoo import install

    from gqcodec import codec, zoo

    install(tmp_path / "w", monkeypatch, adaptive_lambda={"1": 50.0, "2": 50.0, "3": 20.0}, rdoq=1.0)
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    img[:, :32] = 120  # flat half: adaptive files skip blocks there
    old_file = codec.Codec("tiny").compress(img, quality=3)
    old_hash = zoo.model_hash("tiny")

    clone_tool.clone("tiny", "tiny-t", "tempered prior")
    reg = zoo.read_registry()
    assert reg["default"] == "tiny-t" and reg["models"]["tiny"]["superseded_by"] == "tiny-t"
    assert reg["models"]["tiny-t"]["cloned_from"] == "tiny" and reg["models"]["tiny-t"]["description"] == "tempered prior"
    assert zoo.model_hash("tiny-t") == old_hash  # same weights, codebook and prior so far
    with pytest.raises(SystemExit, match="exists"):
        clone_tool.clone("tiny", "tiny-t")
    for bad in ("x" * 17, "has space", ""):  # the name goes into every file's header (1..16 printable ASCII)
        with pytest.raises(SystemExit, match="model_id"):
            clone_tool.clone("tiny", bad)

    data = tmp_path / "pack"
    data.mkdir()
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.roll(img, 7 * i, axis=1)).save(data / f"{i}.png")
    temper.main(["--model", "tiny-t", "--data", str(data), "--images", "3", "--offset", "0",
                 "--qualities", "2,3", "--write"])
    zoo._cache.clear()
    codec._codecs.clear()
    fit = tmp_path / "fit.json"  # an earlier fit applies only to the prior it was measured on
    fit.write_text(json.dumps({"prior_id": codec.Codec("tiny").prior.prior_id.hex(), "taus": [0.5, 0.5, 0.5]}))
    with pytest.raises(SystemExit, match="measured on prior"):
        temper.main(["--model", "tiny-t", "--from-json", str(fit), "--write"])
    hist = zoo.entry("tiny-t")["prior_stats"]["history"][-1]
    assert len(hist["tempered"]) == 3 and set(hist["kept_bits_per_index"]) == {"2", "3"}
    new = codec.Codec("tiny-t")
    assert new.prior != codec.Codec("tiny").prior and zoo.model_hash("tiny-t") != old_hash
    assert zoo.model_hash("tiny") == old_hash
    assert np.array_equal(np.asarray(codec.decompress(old_file)), np.asarray(codec.Codec("tiny").decompress(old_file)))
    fresh = new.compress(img, quality=3)
    assert json.loads(json.dumps(codec.info(fresh).model_id)) == "tiny-t"
    assert np.asarray(codec.decompress(fresh)).shape == img.shape
    zoo._cache.clear()
    codec._codecs.clear()


def test_segments_find_a_count_dependent_temperature():
    """Block 0's indices at count 1 follow p ** 0.6, at counts 2 and 3 the prior itself: two ranges recover that,
    and the count-conditioned prior codes each count with its range's table."""
    prior = _peaked_prior()
    logp = np.log2(prior.weights().astype(np.float64))
    rng = np.random.default_rng(4)
    draw = lambda b, t, k: rng.choice(prior.K, k, p=np.exp2(temper.tempered_logp(logp[b], t)))  # noqa: E731
    v = np.concatenate([draw(0, 0.6, 20_000), draw(0, 1.0, 20_000)])
    c = np.concatenate([np.ones(20_000, dtype=int), rng.integers(2, 4, 20_000)])
    kept = {1: [(v, c), (draw(1, 0.8, 5_000), np.full(5_000, 2))]}
    taus, ranges, report = temper.fit_segments(prior, kept, 2)
    (lo0, hi0, t0), (lo1, hi1, t1) = ranges[0]
    assert (lo0, hi0, lo1, hi1) == (1, 1, 2, 3) and abs(t0 - 0.6) <= 0.06 and abs(t1 - 1.0) <= 0.06
    assert 0.6 < taus[0] < 1.0  # the representative table: one temperature for all of block 0
    assert ranges[2] == [(3, 3, 1.0)]  # block 2: no samples
    assert report[1]["bits_per_index_new"] < report[1]["bits_per_index_old"]
    split = temper.fit_taus(prior, {1: [v, kept[1][1][0]]})[1][1]["bits_per_index_new"]
    assert report[1]["bits_per_index_new"] < split  # the ranges beat one temperature per block
    cond = temper.conditioned_prior(prior, taus, ranges)
    assert cond.conditional and cond.T >= prior.T
    w = cond.weights()
    assert np.array_equal(w[cond.select[0, 1]], temper.tempered_prior(prior, np.array([t0, 1, 1])).weights()[0])
    assert np.array_equal(w[cond.select[0, 3]], temper.tempered_prior(prior, np.array([t1, 1, 1])).weights()[0])
    assert np.array_equal(w[:3], temper.tempered_prior(prior, np.asarray(taus)).weights())  # representatives


def test_a_count_conditioned_prior_ships_and_codes_version_5_files(tmp_path, monkeypatch):
    from fakezoo import install
    from PIL import Image

    import bitstream
    from gqcodec import codec, zoo

    install(tmp_path / "w", monkeypatch, adaptive_lambda={"1": 50.0, "2": 50.0, "3": 20.0}, rdoq=1.0)
    rng = np.random.default_rng(6)
    img = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    img[:, :32] = 120
    clone_tool.clone("tiny", "tiny-c")
    data = tmp_path / "pack"
    data.mkdir()
    for i in range(3):
        Image.fromarray(np.roll(img, 9 * i, axis=0)).save(data / f"{i}.png")
    temper.main(["--model", "tiny-c", "--data", str(data), "--images", "3", "--offset", "0", "--qualities", "2,3",
                 "--segments", "2", "--write"])
    zoo._cache.clear()
    codec._codecs.clear()
    c = codec.Codec("tiny-c")
    assert c.prior.conditional and "count_ranges" in zoo.entry("tiny-c")["prior_stats"]["history"][-1]
    for q in (1, 2, 3):
        f = c.compress(img, quality=q)
        h = bitstream.read_header(f)
        assert h.version == 5 and np.asarray(codec.decompress(f)).shape == img.shape
        # the encoder's estimate of the index bits is what the file spends on them
        _, idx = bitstream.unpack(f, prior=c.prior)
        est = c.prior.bits(idx, (idx >= 0).sum(axis=0))
        assert est <= 8 * h.payload_length
    with pytest.raises(SystemExit, match="count-conditioned already"):
        temper.main(["--model", "tiny-c", "--data", str(data), "--images", "1", "--offset", "0", "--qualities", "2",
                     "--write"])
    zoo._cache.clear()
    codec._codecs.clear()
