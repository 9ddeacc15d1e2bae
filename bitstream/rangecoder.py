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
Dense layout: blocks are coded one after another into one stream, block b's
``h*w`` symbols in C order with block b's model.  Prefix layout (format v2):
first the ``h*w`` block counts with the count-map model (v2-v4: one static
table; v5: adaptive tables by context, ``bitstream.countmap``), then block b's
indices at the positions whose count exceeds b, in C order, with block b's
model (:func:`prefix_chunks`).

Block coders get, with block b's symbols, the block counts of their positions
(``ctx``; ``n`` everywhere in the dense layout): a count-conditioned prior
(format v5) picks each symbol's table from them (``bitstream.container``).
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
    return categorical_from_excess(np.asarray(w, dtype=np.int64) - 1)


def categorical_from_excess(e: np.ndarray):
    """:func:`categorical_from_weights` given ``w - 1`` as float64 (integers): no conversion pass."""
    M, _ = _lib()
    return M.Categorical(np.ascontiguousarray(e, dtype=np.float64), perfect=False)


def encode_chunks(chunks) -> bytes:
    """Range-code ``(symbols, model)`` pairs one after another into one stream; returns the payload."""
    _, Q = _lib()
    enc = Q.RangeEncoder()
    for symbols, model in chunks:
        flat = np.ascontiguousarray(symbols, dtype=np.int32).reshape(-1)
        if flat.size:
            enc.encode(flat, model)
    return np.asarray(enc.get_compressed(), dtype="<u4").tobytes()


class PlainBlocks:
    """Each block's symbols coded with one model: ``model_for_block(b)`` (formats v1 and v2)."""

    def __init__(self, model_for_block):
        self.model_for_block = model_for_block

    def chunks(self, b: int, symbols: np.ndarray, ctx: np.ndarray | None = None):
        yield symbols, self.model_for_block(b)

    def decode(self, dec, b: int, k: int, ctx: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(dec.decode(self.model_for_block(b), k), dtype=np.int64)


def _coder(blocks):
    """A block coder (``chunks(b, symbols)`` / ``decode(dec, b, k)``) or a plain ``model_for_block``."""
    return blocks if hasattr(blocks, "chunks") else PlainBlocks(blocks)


def _block0(spatial, idx0: np.ndarray, coded: np.ndarray, done):
    """Block 0's chunks under ``spatial``: ``done`` (a decoder's, for the canonical check) or computed."""
    return done if done is not None else spatial.chunks(idx0, coded)


def _dense_chunks(indices: np.ndarray, coder, spatial, done=None):
    ctx = _dense_ctx(indices.shape)
    for b in range(indices.shape[0]):
        if b == 0 and spatial is not None:
            yield from _block0(spatial, indices[0], np.ones(indices.shape[1:], dtype=bool), done)
        else:
            yield from coder.chunks(b, indices[b].reshape(-1), ctx)


def encode(indices: np.ndarray, blocks, spatial=None) -> bytes:
    """Range-code ``indices`` (n, h, w) block by block; returns the little-endian payload.

    ``blocks`` is a block coder or a function ``model_for_block(b)`` (one model per block);
    ``spatial`` (format v6), a :class:`bitstream.context.SpatialContext`, codes block 0 instead."""
    return encode_chunks(_dense_chunks(indices, _coder(blocks), spatial))


def _dense_ctx(shape) -> np.ndarray:
    """The block counts of a dense layout's positions: all ``n``."""
    n, h, w = shape
    return np.full(h * w, n, dtype=np.int64)


def prefix_chunks(counts: np.ndarray, indices: np.ndarray, map_model, blocks, spatial=None, done=None):
    """The prefix layout's symbol order: the count map, then block b's indices where ``counts > b``
    (block 0 with ``spatial``, format v6, in its wavefront order)."""
    coder = _coder(blocks)
    if hasattr(map_model, "map_chunks"):  # v5: adaptive, context-coded count map (bitstream.countmap)
        yield from map_model.map_chunks(counts)
    else:
        yield counts, map_model
    for b in range(indices.shape[0]):
        keep = counts > b
        if b == 0 and spatial is not None:
            yield from _block0(spatial, np.where(keep, indices[0], -1), keep, done)
        else:
            yield from coder.chunks(b, indices[b][keep], counts[keep])


def _canonical(payload: bytes, chunks) -> None:
    try:
        again = encode_chunks(chunks)
    except MemoryError:
        raise
    except Exception as e:
        raise FormatError(f"range payload decodes to invalid symbols: {e}") from None
    if again != bytes(payload):
        raise FormatError("range payload is not the canonical encoding of its symbols (corrupt or extra data)")


def _decoder(payload: bytes):
    _, Q = _lib()
    return Q.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))


def decode(payload: bytes, shape: tuple[int, int, int], blocks, spatial=None) -> np.ndarray:
    """Inverse of :func:`encode`; any failure becomes :class:`FormatError`.

    The payload must be canonical: re-encoding the decoded symbols must give
    back exactly the same bytes (rejects corrupt words and appended data).
    """
    n, h, w = shape
    coder = _coder(blocks)
    out = np.empty(shape, dtype=np.int64)
    ctx = _dense_ctx(shape)
    done = None
    try:
        dec = _decoder(payload)
        for b in range(n):
            if b == 0 and spatial is not None:
                out[0], done = spatial.decode(dec, np.ones((h, w), dtype=bool))
            else:
                out[b] = coder.decode(dec, b, h * w, ctx).reshape(h, w)
    except (MemoryError, FormatError):
        raise
    except Exception as e:  # constriction raises assorted errors on garbage
        raise FormatError(f"range payload cannot be decoded: {e}") from None
    _canonical(payload, _dense_chunks(out, coder, spatial, done))
    return out


def decode_prefix(payload: bytes, shape: tuple[int, int, int], symbol_count: int, map_model,
                  blocks, spatial=None) -> np.ndarray:
    """Inverse of ``encode_chunks(prefix_chunks(...))``: int64 (n, h, w) with -1 where a block is not coded.

    The decoded count map must hold ``symbol_count`` indices in all, and the
    payload must be canonical.
    """
    n, h, w = shape
    coder = _coder(blocks)
    try:
        dec = _decoder(payload)
        if hasattr(map_model, "decode_map"):
            counts = map_model.decode_map(dec, h, w)
        else:
            counts = np.asarray(dec.decode(map_model, h * w), dtype=np.int64).reshape(h, w)
        if int(counts.sum()) != symbol_count:
            raise FormatError(f"field symbol_count inconsistent: {symbol_count} != {int(counts.sum())} indices "
                              "in the block-count map")
        out = np.full(shape, -1, dtype=np.int64)
        done = None
        for b in range(n):
            keep = counts > b
            k = int(keep.sum())
            if b == 0 and spatial is not None:
                out[0], done = spatial.decode(dec, keep)
            elif k:
                out[b][keep] = coder.decode(dec, b, k, counts[keep])
    except (MemoryError, FormatError):
        raise
    except Exception as e:  # constriction raises assorted errors on garbage
        raise FormatError(f"range payload cannot be decoded: {e}") from None
    _canonical(payload, prefix_chunks(counts, out, map_model, coder, spatial, done))
    return out
