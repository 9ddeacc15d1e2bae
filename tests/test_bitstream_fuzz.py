"""Malformed .gqc data: truncations, random mutations, and CRC-consistent garbage.

Every outcome must be either a FormatError or a successful decode; run with
``-s`` to see the outcome counts.
"""
from __future__ import annotations

import collections
import re

import numpy as np
import pytest

from bitstream import HEADER_SIZE, FormatError, Prior, pack, unpack
from test_bitstream_helpers import fix_crcs, make_header, random_indices, sample_from_prior, skewed_prior


def _files():
    rng = np.random.default_rng(2024)
    prior = skewed_prior(rng, 16, 2, tau=2.0)
    raw = pack(make_header(5, 2, 3, 4, "raw"), random_indices(rng, 5, 2, 3, 4))
    uni = pack(make_header(8, 2, 3, 4, "range"), random_indices(rng, 8, 2, 3, 4))
    mdl = pack(make_header(4, 2, 4, 5, "range"), sample_from_prior(rng, prior, 2, 4, 5), prior=prior)
    meta = pack(make_header(4, 2, 4, 5, "range"), sample_from_prior(rng, prior, 2, 4, 5), prior=prior,
                metadata={"exif": b"Exif\0\0II*\0" + bytes(12), "xmp": b"<x:xmpmeta>fuzz</x:xmpmeta>"})  # v4
    return {"raw": raw, "range-uniform": uni, "range-model": mdl, "range-meta": meta}, prior


FILES, PRIOR = _files()


def _outcome(data, prior=PRIOR):
    try:
        h, idx = unpack(data, prior=prior)
    except FormatError as e:
        # bucket by the message's leading words ("payload CRC mismatch", "field K_bits out of range", ...)
        return "FormatError: " + re.split(r"[:(0-9]| b'| b\"", str(e))[0].strip()
    assert idx.shape == h.latent_shape and idx.dtype == np.int64
    assert idx.min() >= 0 and idx.max() < h.K
    return "valid decode"


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_truncation_fails(name):
    data = FILES[name]
    assert _outcome(data) == "valid decode"
    for n in range(len(data)):
        with pytest.raises(FormatError, match="truncated|bad magic"):
            unpack(data[:n], prior=PRIOR)


def _mutate(rng, data: bytes) -> bytes:
    b = bytearray(data)
    op = rng.integers(0, 5)
    if op == 0:    # flip one bit
        i = rng.integers(0, len(b))
        b[i] ^= 1 << int(rng.integers(0, 8))
    elif op == 1:  # overwrite 1..4 bytes with random values
        for _ in range(int(rng.integers(1, 5))):
            b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
    elif op == 2:  # insert 1..4 random bytes
        i = int(rng.integers(0, len(b) + 1))
        b[i:i] = rng.integers(0, 256, size=int(rng.integers(1, 5)), dtype=np.uint8).tobytes()
    elif op == 3:  # delete 1..4 bytes
        i = int(rng.integers(0, len(b)))
        del b[i:i + int(rng.integers(1, 5))]
    else:          # swap two bytes
        i, j = rng.integers(0, len(b), size=2)
        b[i], b[j] = b[j], b[i]
    return bytes(b)


def test_random_mutations_only_format_errors():
    rng = np.random.default_rng(12345)
    counts = collections.Counter()
    names = sorted(FILES)
    for t in range(10_000):
        name = names[t % len(names)]
        data = _mutate(rng, FILES[name])
        outcome = _outcome(data)
        if data == FILES[name]:
            assert outcome == "valid decode"
            outcome = "valid decode (no-op mutation: equal bytes swapped or rewritten)"
        counts[outcome] += 1
    print("\nrandom mutations (10000):")
    for k, v in counts.most_common():
        print(f"  {v:6d}  {k}")
    assert sum(counts.values()) == 10_000
    # every real change is caught (the CRC-32s make a surviving change a ~2**-32 event)
    assert counts["valid decode"] == 0


def test_crc_consistent_garbage():
    """Mutations with both CRCs recomputed reach the field checks and the decoders themselves."""
    rng = np.random.default_rng(777)
    counts = collections.Counter()
    names = sorted(FILES)
    for t in range(3000):
        name = names[t % len(names)]
        data = FILES[name]
        b = bytearray(data)
        if t % 2:   # payload garbage: random bytes / random words
            for _ in range(int(rng.integers(1, 4))):
                b[HEADER_SIZE + int(rng.integers(0, len(b) - HEADER_SIZE))] = int(rng.integers(0, 256))
            if rng.random() < 0.2:
                b += rng.integers(0, 256, size=4 * int(rng.integers(1, 3)), dtype=np.uint8).tobytes()
                b[72:76] = (len(b) - HEADER_SIZE).to_bytes(4, "little")
        else:       # header field garbage (not magic/version/CRC)
            for _ in range(int(rng.integers(1, 3))):
                b[int(rng.integers(5, 92))] = int(rng.integers(0, 256))
        counts[_outcome(fix_crcs(bytes(b)))] += 1
    print("\nCRC-consistent garbage (3000):")
    for k, v in counts.most_common():
        print(f"  {v:6d}  {k}")
    assert sum(counts.values()) == 3000


def test_range_payload_garbage_of_any_length():
    """Random range payloads (valid CRCs, consistent lengths) decode or fail cleanly, never hang."""
    rng = np.random.default_rng(99)
    counts = collections.Counter()
    for name in ("range-uniform", "range-model"):
        data = FILES[name]
        for _ in range(300):
            n_words = int(rng.integers(1, 12))
            payload = rng.integers(0, 2**32, size=n_words, dtype=np.uint64).astype("<u4").tobytes()
            b = bytearray(data[:HEADER_SIZE]) + payload
            b[72:76] = len(payload).to_bytes(4, "little")
            counts[_outcome(fix_crcs(bytes(b)))] += 1
    print("\nrandom range payloads (600):", dict(counts))
    assert sum(counts.values()) == 600


def test_wrong_prior_never_crashes():
    data = FILES["range-model"]
    rng = np.random.default_rng(5)
    for _ in range(20):
        other = Prior(rng.integers(1, 100, size=(int(rng.integers(1, 4)), 16)))
        with pytest.raises(FormatError, match="prior mismatch"):
            unpack(data, prior=other)
