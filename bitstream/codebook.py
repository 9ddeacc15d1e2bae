"""The fixed Gaussian codebook of Gaussian Quant.

A codebook is a (K, m) float32 array of standard-normal vectors that any
decoder rebuilds byte for byte from ``(seed, K, m)`` alone.  The generator is
specified completely here and in ``docs/bitstream.md`` (section "Codebook"):

* counter-based SplitMix64: draw ``n`` (n = 0, 1, 2, ...) is
  ``mix64((seed + (n + 1) * 0x9E3779B97F4A7C15) mod 2**64)`` with the
  SplitMix64 finaliser ``mix64``;
* element ``j = k * m + d`` (row-major) uses draws ``2j`` and ``2j + 1``:
  ``u1 = ((a >> 11) + 0.5) / 2**53`` in (0, 1) and ``u2 = (b >> 11) / 2**53``
  in [0, 1);
* Box-Muller, cosine branch, in IEEE float64:
  ``sqrt(-2 ln u1) * cos(2 pi u2)``, rounded to the nearest float32.

Because each element depends only on ``(seed, j)``, codebooks of different K
with the same seed and m share their first rows, and the generator needs no
state or library-specific RNG.  The codebook hash is SHA-256 over the
little-endian float32 bytes (first 16 hex digits are used as short ids).
"""
from __future__ import annotations

import functools
import hashlib

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)
MAX_LOG2_K = 24
MAX_M = 64
GENERATOR = "splitmix64-boxmuller-v1"


def _mix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * MIX1
    z = (z ^ (z >> np.uint64(27))) * MIX2
    return z ^ (z >> np.uint64(31))


def _draws(seed: int, start: int, count: int) -> np.ndarray:
    n = np.arange(start + 1, start + count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return _mix64(np.uint64(seed) + n * GOLDEN)


def check_params(seed: int, K: int, m: int) -> None:
    if not (0 <= int(seed) < 2**64):
        raise ValueError(f"codebook seed must be in [0, 2**64), got {seed}")
    if K < 2 or K > 2**MAX_LOG2_K or K & (K - 1):
        raise ValueError(f"codebook size K must be a power of two in [2, 2**{MAX_LOG2_K}], got {K}")
    if not (1 <= m <= MAX_M):
        raise ValueError(f"codebook dimension m must be in [1, {MAX_M}], got {m}")


def _box_muller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    u1 = ((a >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
    u2 = (b >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return (np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)).astype(np.float32)


def codebook_rows(seed: int, rows, m: int) -> np.ndarray:
    """Rows ``rows`` (any int array, values in [0, 2**MAX_LOG2_K)) of every codebook with this seed and m,
    as float32 ``rows.shape + (m,)``, without generating the others (the generator is counter-based).
    A decoder of a wide-index file needs only the rows it uses."""
    r = np.asarray(rows, dtype=np.int64)
    if r.size and (r.min() < 0 or r.max() >= 2**MAX_LOG2_K):
        raise ValueError(f"codebook rows must be in [0, 2**{MAX_LOG2_K})")
    check_params(seed, 2, m)
    j = (r[..., None] * m + np.arange(m)).astype(np.uint64)
    with np.errstate(over="ignore"):
        base = np.uint64(int(seed))
        a = _mix64(base + (np.uint64(2) * j + np.uint64(1)) * GOLDEN)
        b = _mix64(base + (np.uint64(2) * j + np.uint64(2)) * GOLDEN)
    return _box_muller(a, b)


def _generate(seed: int, K: int, m: int, chunk: int = 1 << 20) -> np.ndarray:
    check_params(seed, K, m)
    total = K * m
    out = np.empty(total, dtype=np.float32)
    for j0 in range(0, total, chunk):
        cnt = min(chunk, total - j0)
        d = _draws(seed, 2 * j0, 2 * cnt)
        out[j0:j0 + cnt] = _box_muller(d[0::2], d[1::2])
    return out.reshape(K, m)


@functools.lru_cache(maxsize=8)
def _cached(seed: int, K: int, m: int) -> np.ndarray:
    cb = _generate(seed, K, m)
    cb.setflags(write=False)
    return cb


def codebook_np(seed: int, K: int, m: int) -> np.ndarray:
    """The (K, m) float32 codebook as a read-only numpy array (cached)."""
    return _cached(int(seed), int(K), int(m))


def codebook_hash(seed: int, K: int, m: int) -> str:
    """SHA-256 (hex) of the codebook's little-endian float32 bytes."""
    return hashlib.sha256(codebook_np(seed, K, m).astype("<f4").tobytes()).hexdigest()
