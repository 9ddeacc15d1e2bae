"""One image at several qualities: Codec.compress_many shares the encoder's work between the
qualities (block searches, the adaptive layout's decodes) and makes the same bytes as compress."""
import numpy as np
import pytest

import bitstream


@pytest.fixture
def ladder(tmp_path, monkeypatch):
    from fakezoo import installed_codec

    # q1-q3 search the model's 2**8 codebook with its prior (RDOQ 1.0), q4 a 2**10 one without RDOQ
    yield from installed_codec(tmp_path / "w", monkeypatch, ladder={"1": 1, "2": 2, "3": 3, "4": 3}, rdoq=1.0,
        index_bits={"4": 10}, rdoq_by_quality={"4": 0.0},
        adaptive_lambda={"1": 30.0, "2": 50.0, "3": 80.0, "4": 50.0}, escape_share={"4": 0.6})


def image(h=72, w=104, seed=7):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:h, :w]
    a = np.stack([(x * 3) % 256, (y * 2) % 256, (x * y) % 256], axis=2).astype(np.int16)
    a[:, w // 2:] += rng.integers(-50, 50, (h, w - w // 2, 3))
    return np.clip(a, 0, 255).astype(np.uint8)


def counting(c, monkeypatch):
    """Count the blocks the encoder searches and the decodes it runs."""
    n = {"blocks": 0, "decodes": 0}
    enc, dec = c.search, c.decode_array

    def search(rgb, n_blocks, *a, first=0, **k):
        n["blocks"] += n_blocks - first
        return enc(rgb, n_blocks, *a, first=first, **k)

    def decode_array(*a, **k):
        n["decodes"] += 1
        return dec(*a, **k)

    monkeypatch.setattr(c, "search", search)
    monkeypatch.setattr(c, "decode_array", decode_array)
    return n


@pytest.mark.parametrize("mode", ["range", "raw"])
def test_same_bytes_as_separate_encodes_in_any_order(ladder, mode):
    a = image()
    single = {q: ladder.compress(a, quality=q, mode=mode) for q in ladder.qualities}
    assert len({bitstream.read_header(d).version for d in single.values()}) > (mode == "range")  # v2 and v3
    assert ladder.compress_many(a, mode=mode) == single
    assert ladder.compress_many(a, [3, 1, 4, 2], mode=mode) == single  # extending and slicing the shared work
    gray = a[..., 0]
    assert ladder.compress_many(gray, [2, 3], mode=mode) == {q: ladder.compress(gray, quality=q, mode=mode)
                                                            for q in (2, 3)}


def test_narrow_qualities_share_searches_and_decodes(ladder, monkeypatch):
    a = image()
    n = counting(ladder, monkeypatch)
    for q in (1, 2, 3):
        ladder.compress(a, quality=q)
    separate = dict(n)
    assert separate == {"blocks": 1 + 2 + 3, "decodes": 1 + 2 + 3 + 1}  # decodes with 1..n blocks, + the empty one
    n.update(blocks=0, decodes=0)
    ladder.compress_many(a, [1, 2, 3])
    assert n == {"blocks": 3, "decodes": 3}  # the empty decode is cached since the first encode
    n.update(blocks=0, decodes=0)
    ladder.compress_many(a, [1, 2, 3, 4])  # q4 searches its wider codebook on its own
    assert n == {"blocks": 3 + 3, "decodes": 3 + 3}


def test_known_errors_are_reused_exactly(ladder):
    a = image()
    idx = ladder.encode_array(a, 3, 1.0)
    assert np.array_equal(idx[1:], ladder.encode_array(a, 3, 1.0, first=1))
    se, bits = ladder.count_costs(a, idx)
    se2, bits2 = ladder.count_costs(a, idx, known_se=se[:2])
    assert np.array_equal(se, se2) and np.array_equal(bits, bits2)
    se_short, _ = ladder.count_costs(a, idx[:2], known_se=se)
    assert np.array_equal(se_short, se[:3])
    with pytest.raises(ValueError, match="first"):
        ladder.encode_array(a, 2, first=2)


def test_size_limit_uses_the_shared_work(ladder, monkeypatch):
    a = image()
    files = {q: ladder.compress(a, quality=q) for q in ladder.qualities}
    n = counting(ladder, monkeypatch)
    data = ladder.compress(a, max_bytes=len(files[3]))
    assert data == files[3]
    # bisection visits q2 (fits), q3 (fits), q4 (too big): q3 extends q2's blocks instead of searching 3 anew
    assert n["blocks"] == 3 + 3
