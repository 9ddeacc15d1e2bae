"""Range coding of index arrays with constriction's queue range coder.

constriction is imported lazily (first use), so ``import bitstream`` stays
cheap.  Parameters: ``constriction.stream.queue.RangeEncoder/RangeDecoder``
(64-bit state, 32-bit words, 24-bit probabilities).  Models:

* uniform prior: ``constriction.stream.model.Uniform(K)``; for K = 2**K_bits
  this is exactly weight ``2**(24 - K_bits)`` per index;
* model prior: ``Categorical(w - 1, perfect=False)`` where ``w`` are the exact
  24-bit weights of :func:`bitstream.prior.quantize`.  Passing ``w - 1``
  (integers, exact in float64) makes constriction's leaky quantisation
  (``1 + floor`` of the scaled cumulative sums, scale exactly 1.0) reproduce
  ``w`` bit for bit, so the code is defined by integers only.

The payload is the encoder's uint32 words, each stored little-endian.
Blocks are coded one after another into one stream, block b's ``h*w``
symbols in C order with block b's model.
"""
from __future__ import annotations

import functools

import numpy as np

from .header import FormatError


def _lib():
    try:
        import constriction
    except ImportError as e:  # pragma: no cover - constriction is a dependency
        raise RuntimeError("range coding needs the 'constriction' package (pip install constriction)") from e
    return constriction.stream.model, constriction.stream.queue


@functools.lru_cache(maxsize=32)
def uniform_model(K: int):
    M, _ = _lib()
    return M.Uniform(int(K))


def categorical_from_weights(w: np.ndarray):
    """constriction model with exactly the 24-bit weights ``w`` (int, each >= 1, sum 2**24, len <= 2**23)."""
    M, _ = _lib()
    return M.Categorical(np.ascontiguousarray(np.asarray(w, dtype=np.int64) - 1, dtype=np.float64), perfect=False)


def encode(indices: np.ndarray, model_for_block) -> bytes:
    """Range-code ``indices`` (n, h, w) block by block; returns the little-endian payload."""
    _, Q = _lib()
    enc = Q.RangeEncoder()
    for b in range(indices.shape[0]):
        slab = np.ascontiguousarray(indices[b], dtype=np.int32).reshape(-1)
        enc.encode(slab, model_for_block(b))
    return np.asarray(enc.get_compressed(), dtype="<u4").tobytes()


def decode(payload: bytes, shape: tuple[int, int, int], model_for_block) -> np.ndarray:
    """Inverse of :func:`encode`; any failure becomes :class:`FormatError`.

    The payload must be canonical: re-encoding the decoded symbols must give
    back exactly the same bytes (rejects corrupt words and appended data).
    """
    _, Q = _lib()
    n, h, w = shape
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    out = np.empty(shape, dtype=np.int64)
    try:
        dec = Q.RangeDecoder(words)
        for b in range(n):
            out[b] = np.asarray(dec.decode(model_for_block(b), h * w)).reshape(h, w)
    except MemoryError:
        raise
    except Exception as e:  # constriction raises assorted errors on garbage
        raise FormatError(f"range payload cannot be decoded: {e}") from None
    try:
        again = encode(out, model_for_block)
    except MemoryError:
        raise
    except Exception as e:
        raise FormatError(f"range payload decodes to invalid symbols: {e}") from None
    if again != bytes(payload):
        raise FormatError("range payload is not the canonical encoding of its symbols (corrupt or extra data)")
    return out
