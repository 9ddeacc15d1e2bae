"""Format version 5: count-conditioned index priors (docs/bitstream.md, section 5.9)."""
from __future__ import annotations

import numpy as np
import pytest

import bitstream
from bitstream import FormatError, Prior, pack, read_header, truncate, unpack
from test_bitstream_helpers import edit, make_header, sample_from_prior, skewed_prior, skip_tail


def _prior(rng, K=64, B=3, extra=2):
    base = skewed_prior(rng, K, B + extra, tau=4.0)
    select = rng.integers(0, B + extra, size=(B, B + 1))
    return Prior(base.freqs, select), Prior(base.freqs)


def _file(rng, prior, layout="prefix", n=3, lh=4, lw=5, K_bits=6):
    idx = sample_from_prior(rng, prior, n, lh, lw)
    if layout == "prefix":
        idx = skip_tail(rng, idx)
    return idx, pack(make_header(K_bits, n, lh, lw, "range"), idx, prior=prior)


@pytest.mark.parametrize("layout", ["dense", "prefix"])
def test_roundtrip_is_version_5_and_costs_what_the_tables_say(layout):
    rng = np.random.default_rng(5)
    cond, plain = _prior(rng)
    idx, data = _file(rng, cond, layout)
    h, out = unpack(data, prior=cond)
    assert h.version == 5 and h.layout == layout and np.array_equal(out, idx)
    counts = (idx >= 0).sum(axis=0)
    bits = cond.bits(idx, counts)
    # the indices' information content under their (block, count) tables, plus the count map, flush and tables
    assert bits <= 8 * h.payload_length
    if layout == "dense":
        assert 8 * h.payload_length <= bits + 64 + 32
    # a plain prior with the same tables: dense files stay v1, prefix files are v5 (context-coded count map)
    assert read_header(pack(make_header(6, 3, 4, 5, "range"), idx, prior=plain)).version == (1 if layout == "dense" else 5)


def test_tables_follow_the_counts():
    """Block 0 coded with a table that gives its indices 1 bit costs far less than with one that gives 20."""
    K = 1 << 10
    cheap = np.ones(K, dtype=np.int64)
    cheap[7] = 10**6  # index 7: ~1 bit
    flat = np.ones(K, dtype=np.int64)
    freqs = np.stack([flat, flat, cheap])
    idx = np.full((2, 6, 6), 7, dtype=np.int64)
    idx[1, :, 3:] = -1  # left half counts 2, right half 1
    sizes = {}
    for name, sel in (("count 2 cheap", [[0, 0, 2], [1, 1, 1]]), ("count 1 cheap", [[0, 2, 0], [1, 1, 1]]),
                      ("never", [[0, 0, 0], [1, 1, 1]])):
        p = Prior(freqs, np.array(sel))
        data = pack(make_header(10, 2, 6, 6, "range"), idx, prior=p)
        assert np.array_equal(unpack(data, prior=p)[1], idx)
        sizes[name] = read_header(data).payload_length
    # 18 positions of block 0 at ~1 bit instead of 10 bits each in both conditioned cases
    assert sizes["count 2 cheap"] < sizes["never"] - 16 and sizes["count 1 cheap"] < sizes["never"] - 16


def test_readers_check_the_prior_kind():
    rng = np.random.default_rng(9)
    cond, plain = _prior(rng)
    idx, data = _file(rng, cond, "dense")
    with pytest.raises(FormatError, match="prior mismatch"):
        unpack(data, prior=plain)  # its id differs
    # a dense v5 file relabelled as v1 (header CRC fixed) names the conditioned prior but is not v5
    with pytest.raises(FormatError, match="version 1 file needs a prior without count conditioning"):
        unpack(edit(data, 4, b"\x01"), prior=cond)
    # a dense v1 file relabelled as v5 means the same (a plain prior's tables do not depend on the counts)
    plain_file = pack(make_header(6, 3, 4, 5, "range"), idx, prior=plain)
    assert np.array_equal(unpack(edit(plain_file, 4, b"\x05"), prior=plain)[1], idx)
    with pytest.raises(FormatError, match="version 5 files are range coded"):
        read_header(edit(pack(make_header(6, 3, 4, 5, "raw"), idx), 4, b"\x05"))


def test_truncate_keeps_the_conditioned_prior():
    rng = np.random.default_rng(11)
    cond, _ = _prior(rng)
    idx, data = _file(rng, cond, "dense")
    small = truncate(data, 2, prior=cond, counts=np.full((4, 5), 1))
    h, out = unpack(small, prior=cond)
    assert h.version == 5 and h.n_blocks == 2 and np.array_equal(out[0], idx[0]) and (out[1] == -1).all()


def test_prior_files_and_identity(tmp_path):
    rng = np.random.default_rng(13)
    cond, plain = _prior(rng)
    assert cond.conditional and not plain.conditional and cond != plain and cond.prior_id != plain.prior_id
    path = tmp_path / "p.npz"
    cond.save(path)
    back = Prior.load(path)
    assert back == cond and back.sha256() == cond.sha256()
    plain.save(path)
    assert Prior.load(path) == plain and not Prior.load(path).conditional
    # the table of each (block, count): the representative table where the block is not coded
    assert cond.tables_for(1, [0, 1, 2, 3]).tolist() == [1, 1, cond.select[1, 2], cond.select[1, 3]]
    np.savez(tmp_path / "bad.npz", freqs=cond.freqs, format=np.array("gqcodec-prior-v2"))
    with pytest.raises(FormatError, match="needs a 'select' array"):
        Prior.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("select,match", [
    (np.zeros((3, 3), dtype=np.int64), r"\(B, B \+ 1\)"),
    (np.full((3, 4), 5), r"table numbers in \[0, 5\)"),
    (np.zeros((6, 7), dtype=np.int64), "at least one table per block"),
    (np.zeros((3, 4)), "integers"),
])
def test_bad_selections_are_refused(select, match):
    freqs = np.ones((5, 8), dtype=np.uint32)
    with pytest.raises(ValueError, match=match):
        Prior(freqs, select)


def test_check_blocks_needs_a_selection_for_every_block():
    rng = np.random.default_rng(2)
    cond, _ = _prior(rng, B=2, extra=3)  # 5 tables but a selection for 2 blocks only
    with pytest.raises(ValueError, match="selects tables for 2 blocks"):
        pack(make_header(6, 3, 4, 5, "range"), np.zeros((3, 4, 5), dtype=np.int64), prior=cond)
    with pytest.raises(ValueError, match="needs format v5"):
        pack(make_header(6, 2, 4, 5, "range"), np.zeros((2, 4, 5), dtype=np.int64), prior=cond, map_coding="table")
    assert bitstream.VERSION >= 5
