"""Raw coding: every index as exactly ``K_bits`` bits, MSB first, vectorised with numpy.

The payload is the concatenation of the binary representations of the
indices in C order (block, row, column), each written most significant bit
first; bits fill each byte from its most significant bit; the last byte is
padded with zero bits.  Work is done in chunks of ``CHUNK`` symbols (a
multiple of 8, so every chunk starts on a byte boundary) to bound memory.
"""
from __future__ import annotations

import numpy as np

CHUNK = 1 << 16


def pack_bits(values: np.ndarray, k: int) -> bytes:
    """Pack non-negative ints ``< 2**k`` (any shape, C order) into ``ceil(n*k/8)`` bytes."""
    if not 1 <= k <= 32:
        raise ValueError(f"bit width must be 1..32, got {k}")
    v = np.ascontiguousarray(values).reshape(-1)
    n = v.size
    out = np.empty((n * k + 7) // 8, dtype=np.uint8)
    for s in range(0, n, CHUNK):
        chunk = v[s:s + CHUNK].astype(">u4")
        bits = np.unpackbits(chunk.view(np.uint8).reshape(-1, 4), axis=1)[:, 32 - k:]
        packed = np.packbits(bits.reshape(-1))
        o = s * k // 8
        out[o:o + packed.size] = packed
    return out.tobytes()


def unpack_bits(payload, n: int, k: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: ``n`` values (int64) from ``ceil(n*k/8)`` bytes.

    The caller checks the length; the padding bits are returned by :func:`padding_ok`.
    """
    if not 1 <= k <= 32:
        raise ValueError(f"bit width must be 1..32, got {k}")
    buf = np.frombuffer(payload, dtype=np.uint8)
    if buf.size != (n * k + 7) // 8:
        raise ValueError("payload length does not match n * k bits")
    out = np.empty(n, dtype=np.int64)
    full = np.zeros((min(CHUNK, n), 32), dtype=np.uint8)
    for s in range(0, n, CHUNK):
        cnt = min(CHUNK, n - s)
        o = s * k // 8
        bits = np.unpackbits(buf[o:o + (cnt * k + 7) // 8])[:cnt * k].reshape(cnt, k)
        f = full[:cnt]
        f[:, 32 - k:] = bits
        out[s:s + cnt] = np.packbits(f, axis=1).view(">u4").reshape(-1)
    return out


def padding_ok(payload, n: int, k: int) -> bool:
    """True when the unused low bits of the last byte are zero."""
    pad = (-n * k) % 8
    return pad == 0 or (payload[-1] & ((1 << pad) - 1)) == 0
