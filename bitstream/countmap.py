"""The v5 count map: each position's block count coded with an adaptive frequency table chosen by
its already-coded neighbours (docs/bitstream.md, section 5.6).

Counts are coded in C order. Position (y, x) has the left count ``L`` (if x > 0) and the upper
count ``U`` (if y > 0); a missing one takes the other's value, and with neither (the first
position) both are ``n // 2``. Its context is ``min(CONTEXTS - 1, CONTEXTS * (L + U) // (2n + 1))``.
Each context has a frequency table over the counts 0..n, all ones at the start; the count is coded
with that table's 24-bit weights (the integer rule of section 5.2), then the table's entry for it
grows by ``INCREMENT``, and when the table's total then exceeds ``LIMIT`` every entry ``f``
becomes ``(f + 1) // 2``. Integers only, so every reader rebuilds the same tables.
"""
from __future__ import annotations

import numpy as np

from . import rangecoder
from .prior import PRECISION, quantize

CONTEXTS = 6
INCREMENT = 24
LIMIT = 4096


def context(L: int | None, U: int | None, n: int) -> int:
    """The context of a position from its left and upper counts (None where there is none)."""
    if L is None and U is None:
        L = U = n // 2
    elif L is None:
        L = U
    elif U is None:
        U = L
    return min(CONTEXTS - 1, CONTEXTS * (L + U) // (2 * n + 1))


class CountMapModel:
    """The adaptive tables of one count map (state advances with every coded count)."""

    def __init__(self, n: int):
        self.n = n
        self.freqs = np.ones((CONTEXTS, n + 1), dtype=np.int64)

    def weights(self, ctx: int) -> np.ndarray:
        return quantize(self.freqs[ctx][None])[0]

    def update(self, ctx: int, v: int) -> None:
        f = self.freqs[ctx]
        f[v] += INCREMENT
        if int(f.sum()) > LIMIT:
            f[:] = (f + 1) // 2


def _contexts_of(counts: np.ndarray, y: int, x: int, n: int) -> int:
    return context(int(counts[y, x - 1]) if x else None, int(counts[y - 1, x]) if y else None, n)


def _walk(counts: np.ndarray, n: int):
    """Visit the positions of ``counts`` in C order, yielding ``(y, x, weights)``: the 24-bit weights
    position (y, x) is coded with. The caller has ``counts[y, x]`` set when it asks for the next
    position (a decoder writes the count it just read), and the tables then learn it."""
    h, w = counts.shape
    state = CountMapModel(n)
    for y in range(h):
        for x in range(w):
            ctx = _contexts_of(counts, y, x, n)
            yield y, x, state.weights(ctx)
            state.update(ctx, int(counts[y, x]))


def chunks(counts: np.ndarray, n: int):
    """``(symbols, model)`` pairs that code the count map ``counts`` (h, w), one per position."""
    counts = np.asarray(counts)
    for y, x, w in _walk(counts, n):
        yield np.array([counts[y, x]], dtype=np.int32), rangecoder.categorical_from_weights(w)


def decode(dec, h: int, w: int, n: int) -> np.ndarray:
    """Read an (h, w) count map from the range decoder ``dec``."""
    counts = np.zeros((h, w), dtype=np.int64)
    for y, x, wts in _walk(counts, n):
        counts[y, x] = int(dec.decode(rangecoder.categorical_from_weights(wts), 1)[0])
    return counts


def code_lengths(counts: np.ndarray, n: int) -> np.ndarray:
    """(h, w) bits each count of the map costs (ideal, under the 24-bit weights it is coded with)."""
    counts = np.asarray(counts)
    out = np.empty(counts.shape)
    for y, x, w in _walk(counts, n):
        out[y, x] = PRECISION - np.log2(float(w[counts[y, x]]))
    return out


def contexts(counts: np.ndarray, n: int) -> np.ndarray:
    """(h, w) the context of every position of the count map ``counts`` (vectorised :func:`context`)."""
    c = np.asarray(counts, dtype=np.int64)
    h, w = c.shape
    L = np.empty_like(c)
    U = np.empty_like(c)
    L[:, 1:], U[1:, :] = c[:, :-1], c[:-1, :]
    L[:, 0] = U[:, 0]  # no left neighbour: the upper one's value ...
    U[0, :] = L[0, :]  # ... and no upper one: the left one's
    L[0, 0] = U[0, 0] = n // 2
    return np.minimum(CONTEXTS - 1, CONTEXTS * (L + U) // (2 * n + 1))


def estimated_costs(counts: np.ndarray, n: int) -> np.ndarray:
    """(n + 1, h, w): about what coding count v at each position would cost in a map like ``counts``
    (its neighbours' contexts and per-context histograms, as the adaptive tables would learn them);
    an encoder's estimate for choosing the counts, not an exact code length."""
    ctx = contexts(counts, n)
    hist = np.ones((CONTEXTS, n + 1))
    np.add.at(hist, (ctx.ravel(), np.asarray(counts).ravel()), INCREMENT)
    bits = -np.log2(hist / hist.sum(axis=1, keepdims=True))  # (contexts, n + 1)
    return np.moveaxis(bits[ctx], -1, 0)


def min_bits(n: int) -> float:
    """A lower bound on the bits of one count: no table ever gives a count more than the weight of
    ``(F - n)`` out of ``F`` with ``F`` the largest total a table is coded with (every entry is >= 1)."""
    F = max(LIMIT, n + 1 + INCREMENT)
    R = (1 << PRECISION) - (n + 1)
    return float(PRECISION - np.log2(R * (F - n) / F + 1))  # weights are at most R * f / total + 1


class AdaptiveMap:
    """The count-map coder of v5 files for ``rangecoder.prefix_chunks`` / ``decode_prefix``."""

    def __init__(self, n: int):
        self.n = n

    def map_chunks(self, counts: np.ndarray):
        return chunks(counts, self.n)

    def decode_map(self, dec, h: int, w: int) -> np.ndarray:
        return decode(dec, h, w, self.n)
