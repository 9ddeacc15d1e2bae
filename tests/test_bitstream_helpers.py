"""Shared helpers for the bitstream tests (this module defines no tests itself)."""
from __future__ import annotations

import struct
import zlib

import numpy as np

import bitstream
from bitstream import HEADER_SIZE, Header


def make_header(K_bits=8, n=2, lh=3, lw=4, coding="raw", stride=16, **kw) -> Header:
    fields = dict(model_id="gq-test", model_hash=bytes(range(1, 9)), codebook_seed=0x1234_5678_9ABC_DEF0,
                  K_bits=K_bits, m=16, stride=stride, n_blocks=n, latent_h=lh, latent_w=lw,
                  width=lw * stride - stride // 2 if stride > 1 else lw, height=lh * stride if stride > 1 else lh,
                  color="RGB", coding=coding, prior="uniform", quality=3)
    fields.update(kw)
    return Header(**fields)


def random_indices(rng, K_bits, n, lh, lw) -> np.ndarray:
    idx = rng.integers(0, 1 << K_bits, size=(n, lh, lw), dtype=np.int64)
    flat = idx.reshape(-1)
    if flat.size >= 2:  # always exercise the extremes
        flat[0], flat[-1] = 0, (1 << K_bits) - 1
    return idx


def skewed_prior(rng, K, T, tau=None) -> bitstream.Prior:
    """A peaked prior (geometric-like over a random permutation of the indices)."""
    tau = tau or K / 64
    rows = []
    for _ in range(T):
        p = np.exp(-np.arange(K) / tau)[rng.permutation(K)]
        rows.append(np.round(p / p.sum() * 1e7))
    return bitstream.Prior.from_counts(np.array(rows), smoothing=0.5)


def sample_from_prior(rng, prior: bitstream.Prior, n, lh, lw) -> np.ndarray:
    w = prior.weights()
    out = np.empty((n, lh, lw), dtype=np.int64)
    for b in range(n):
        p = w[prior.table_index(b)] / float(1 << 24)
        out[b] = rng.choice(prior.K, size=(lh, lw), p=p)
    return out


def fix_crcs(data: bytes, payload_crc: bool = True) -> bytes:
    """Recompute the payload CRC (optional) and the header CRC of (possibly edited) .gqc bytes."""
    b = bytearray(data)
    if payload_crc:
        b[76:80] = struct.pack("<I", zlib.crc32(bytes(b[HEADER_SIZE:])) & 0xFFFFFFFF)
    b[92:96] = struct.pack("<I", zlib.crc32(bytes(b[:92])) & 0xFFFFFFFF)
    return bytes(b)


def edit(data: bytes, offset: int, new: bytes, payload_crc: bool = False) -> bytes:
    """Replace bytes at ``offset`` and make the CRCs valid again."""
    b = bytearray(data)
    b[offset:offset + len(new)] = new
    return fix_crcs(bytes(b), payload_crc=payload_crc)


def skip_tail(rng, idx: np.ndarray, p_full: float = 0.3) -> np.ndarray:
    """``idx`` with a random number of trailing blocks per position set to -1 (the prefix layout)."""
    n = idx.shape[0]
    counts = rng.integers(0, n + 1, size=idx.shape[1:])
    counts[rng.random(idx.shape[1:]) < p_full] = n
    out = idx.copy()
    out[np.arange(n)[:, None, None] >= counts[None]] = -1
    return out


def context_model(K: int, m: int = 16, seed: int = 0x1234_5678_9ABC_DEF0, gain: int = 3000):
    """A block-0 spatial context model (format v6) over K indices from formulas only (no RNG, no floats)."""
    from bitstream.context import NEIGHBOURS, SpatialContext, qcodebook_sha

    j, d = np.meshgrid(np.arange(len(NEIGHBOURS) * m), np.arange(m), indexing="ij")
    G = ((j * 7 + d * 3) % 11 - 5) * gain
    g0 = (np.arange(m) % 5 - 2) * 1000
    base = -((np.arange(K) * 2654435761) % 1000003) - 65536 * 6
    return SpatialContext(seed, m, G, g0, base, qcodebook_sha(seed, K, m))


def copy_context(prior: bitstream.Prior, seed: int, m: int = 16, gain: int = 1_000_000):
    """A block-0 context model that expects a position to repeat its up and left neighbours' codeword
    (the prior's block-0 histogram tilted towards their sum): cheap where an image is flat."""
    from bitstream.context import NEIGHBOURS, SpatialContext, qcodebook_sha

    G = np.zeros((len(NEIGHBOURS) * m, m), dtype=np.int64)
    G[:m] = G[m:2 * m] = gain * np.eye(m, dtype=np.int64)
    f = prior.freqs[prior.table_index(0)].astype(np.float64)
    base = np.rint(65536 * np.log2(f / f.sum())).astype(np.int64)
    return SpatialContext(seed, m, G, np.zeros(m, dtype=np.int64), base, qcodebook_sha(seed, prior.K, m))


def with_context(prior: bitstream.Prior, **kw) -> bitstream.Prior:
    """``prior`` plus :func:`context_model` (its files are format v6)."""
    return bitstream.Prior(prior.freqs, prior.select, context_model(prior.K, **kw))
