"""Block 0's spatial context model (format versions 6 and 7), in integer arithmetic only.

A file's first block is its most expensive (its prior histogram is the flattest), and the
codewords around a position tell something about the one there. Version 6 codes block 0's index
at each position with a distribution conditioned on the block-0 codewords of six neighbours that
a decoder already has: up, left, up-left, up-right, two up and two left (:data:`NEIGHBOURS`).
The model (fitted per index prior by ``tools/fit_context.py``, stored in the prior file) is the
block-0 histogram tilted towards a linear prediction of the codeword::

    p(i | ctx) ∝ h(i) · 2^(tau/ln2 · [ (1/V - 1/S)·c_i²/2 + c_i·mu/S ]),   mu = W·x + b

with every real number replaced by integers, so encoder and decoder agree bit for bit on any
machine (docs/bitstream.md, section 5.10):

* ``Q = rint(32 · codebook)`` (int64 (K, m)), checked against the SHA-256 the model stores;
* features ``x`` (6m,): the neighbours' rows of ``Q`` (zeros for a neighbour outside the
  latent or not coding block 0), in :data:`NEIGHBOURS` order;
* ``t = clip((x @ G + g0) >> 16, ±2**20)`` (int64 (m,));
* logits ``z_i = base_i + Q_i · t`` in 2**-16 bits (products and sums < 2**53, so the float64
  matrix product used for speed is exact);
* ``r_i = max(z) - z_i``, ``v_i = LUT[(r_i >> 8) & 255] >> min(r_i >> 16, 31)`` with
  ``LUT[j] = floor(2**22 · 2**(-j/256) + 1/2)`` (``r_i < 2**31``);
* 24-bit weights ``w_i = 1 + floor(v_i · s)`` with ``s = (2**24 - K) / sum(v)``, both operations in
  IEEE-754 binary64 (correctly rounded everywhere, so as portable as integers); what is left of
  ``2**24`` goes to the first index of largest ``z``.

Positions are coded in wavefront order: by ``2y + x``, then by ``y``. Every neighbour of a
position lies on an earlier wavefront, so a decoder computes a whole wavefront's distributions at
once.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .codebook import codebook_rows
from .header import FormatError

NEIGHBOURS = ((-1, 0), (0, -1), (-1, -1), (-1, 1), (-2, 0), (0, -2))  # (dy, dx): U, L, UL, UR, UU, LL
QSCALE = 32        # codeword quantisation step 1/32
T_SHIFT = 16       # t = (x @ G + g0) >> T_SHIFT
T_LIMIT = 1 << 20  # |t| clipped to this, which keeps every product exact
LUT_BITS = 22
LUT = np.array([int(2.0 ** (LUT_BITS - j / 256.0) + 0.5) for j in range(256)], dtype=np.int64)
LUT_SUM = 775590046  # sum(LUT): a check that this platform's pow rounded every entry as specified
LUT32 = LUT.astype(np.int32)
PRECISION = 24
R_CLIP = 23 << 16  # r = max(z) - z clipped here gives the same v (see SpatialContext.excess)
BATCH = 64           # positions whose distributions are computed together (memory: BATCH * K * 8 bytes a pass)
SUB = 4              # fewest positions per worker thread task
THREADS = max(1, min(4, os.cpu_count() or 1))  # numpy releases the GIL in the array passes

if int(LUT.sum()) != LUT_SUM:  # pragma: no cover - a libm that rounds 2**x wrongly
    raise ImportError("bitstream.context: the exp2 table differs from the specification on this platform")


@functools.lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(THREADS, thread_name_prefix="gq-context")


@functools.lru_cache(maxsize=4)
def qcodebook(seed: int, K: int, m: int) -> np.ndarray:
    """``rint(32 · codebook)`` as float64 (K, m) (integer values; read-only)."""
    q = qrows(seed, np.arange(K), m)
    q.setflags(write=False)
    return q


def qrows(seed: int, rows: np.ndarray, m: int) -> np.ndarray:
    """``rint(32 · codebook)`` of the given codebook rows (any index, also past a prior's K), float64 (R, m)."""
    return np.rint(codebook_rows(seed, np.asarray(rows, dtype=np.int64), m).astype(np.float64) * QSCALE)


def qcodebook_sha(seed: int, K: int, m: int) -> str:
    return hashlib.sha256(qcodebook(seed, K, m).astype("<i2").tobytes()).hexdigest()


def wavefronts(coded: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(ys, xs)`` of the coded positions of each wavefront ``2y + x``, in coding order."""
    h, w = coded.shape
    ys, xs = np.nonzero(coded)
    key = 2 * ys + xs
    order = np.lexsort((ys, key))
    ys, xs, key = ys[order], xs[order], key[order]
    cuts = np.flatnonzero(np.diff(key)) + 1
    return list(zip(np.split(ys, cuts), np.split(xs, cuts)))


def neighbour_features(q: np.ndarray, idx0: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """(P, 6m) int64 features at positions ``(ys, xs)`` of block-0 indices ``idx0`` (h, w; < 0 = not
    coded): the integer codebook ``q``'s rows of the :data:`NEIGHBOURS`, zeros where one is outside
    the latent or not coded."""
    h, w = idx0.shape
    out = np.zeros((ys.size, len(NEIGHBOURS), q.shape[1]), dtype=np.int64)
    for k, (dy, dx) in enumerate(NEIGHBOURS):
        y, x = ys + dy, xs + dx
        inside = (y >= 0) & (x >= 0) & (x < w)
        sym = np.full(ys.size, -1, dtype=np.int64)
        sym[inside] = idx0[y[inside], x[inside]]
        ok = sym >= 0
        out[ok, k] = q[sym[ok]].astype(np.int64)
    return out.reshape(ys.size, -1)


class SpatialContext:
    """Block 0's integer context model of one index prior (see the module docstring)."""

    def __init__(self, seed: int, m: int, G, g0, base, qsha: str):
        G, g0, base = (np.asarray(a) for a in (G, g0, base))
        for name, a in (("G", G), ("g0", g0), ("base", base)):
            if a.dtype.kind not in "iu":
                raise ValueError(f"context {name} must be integers, got dtype {a.dtype}")
        n = len(NEIGHBOURS) * int(m)
        if G.shape != (n, m) or g0.shape != (m,) or base.ndim != 1 or base.size < 2:
            raise ValueError(f"context arrays have shapes G {G.shape}, g0 {g0.shape}, base {base.shape}; "
                             f"need ({n}, {m}), ({m},), (K,)")
        if np.abs(G).max(initial=0) >= 1 << 31 or np.abs(g0).max(initial=0) >= 1 << 40 \
                or np.abs(base).max(initial=0) >= 1 << 40:
            raise ValueError("context arrays out of range (|G| < 2**31, |g0|, |base| < 2**40)")
        self.seed, self.m = int(seed), int(m)
        self.G, self.g0, self.base = (np.ascontiguousarray(a, dtype=np.int64) for a in (G, g0, base))
        self.qsha = str(qsha)
        self._q = self._qT = None
        self._fq = None  # feature rows when they go past the K table rows (:meth:`with_wide_rows`)

    @property
    def K(self) -> int:
        return self.base.size

    def arrays(self) -> dict:
        """The arrays a prior file stores (and its hash covers)."""
        return {"ctx_G": self.G, "ctx_g0": self.g0, "ctx_base": self.base,
                "ctx_codebook": np.array([self.seed, self.m], dtype=np.uint64), "ctx_qsha": np.array(self.qsha)}

    @classmethod
    def from_arrays(cls, z) -> "SpatialContext":
        seed, m = (int(v) for v in np.asarray(z["ctx_codebook"], dtype=np.uint64))
        return cls(seed, m, z["ctx_G"], z["ctx_g0"], z["ctx_base"], str(z["ctx_qsha"]))

    def digest(self, h) -> None:
        """Feed the model into a hashlib object (part of the prior's SHA-256)."""
        h.update(b"context" + np.array([self.seed, self.m], dtype="<u8").tobytes())
        for a in (self.G, self.g0, self.base):
            h.update(a.astype("<i8").tobytes())
        h.update(self.qsha.encode())

    def qT(self) -> np.ndarray:
        """The integer codebook transposed with the base logits as a last row (m + 1, K), float64,
        checked against the model's hash: ``[t, 1] @ qT()`` is ``base + Q · t``."""
        if self._qT is None:
            self._qT = np.ascontiguousarray(np.vstack([self.q().T, self.base[None, :]]).astype(np.float64))
        return self._qT

    def q(self) -> np.ndarray:
        if self._q is None:
            q = qcodebook(self.seed, self.K, self.m)
            if hashlib.sha256(q.astype("<i2").tobytes()).hexdigest() != self.qsha:
                raise FormatError("the block-0 context model's integer codebook does not match on this platform "
                                  "(its float codebook differs from the specification)")
            self._q = q
        return self._q

    def features(self, idx0: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        return neighbour_features(self.q() if self._fq is None else self._fq, idx0, ys, xs)

    def with_wide_rows(self, rows: np.ndarray) -> "SpatialContext":
        """The same model whose neighbour features also know the codewords of indices ``K, K + 1,
        ...``: ``rows`` ((R, m) integer values, rows of ``rint(32 · codebook)``). Format v7 codes block 0's
        wide (escaped) indices first and then the narrow ones with the context, whose neighbours
        may be wide; the caller renumbers those wide indices to ``K + j`` in the ``idx0`` it passes."""
        view = copy.copy(self)
        view._fq = np.vstack([self.q(), np.asarray(rows, dtype=np.float64).reshape(-1, self.m)])
        self.qT()
        view._qT = self._qT
        return view

    def tilt(self, feats: np.ndarray) -> np.ndarray:
        """(P, m) int64 ``t = clip((x @ G + g0) >> 16, ±2**20)`` for features (P, 6m): the logits are
        ``z_i = base_i + Q_i · t`` (2**-16 bits)."""
        return np.clip((feats @ self.G + self.g0) >> T_SHIFT, -T_LIMIT, T_LIMIT)

    def excess(self, feats: np.ndarray) -> np.ndarray:
        """(P, K) float64 ``w - 1`` of the 24-bit weights :meth:`weights` defines (integers below 2**24,
        exact in binary64): what the range coder takes, without an integer round trip."""
        P = feats.shape[0]
        ar = np.arange(P)
        t = self.tilt(feats)
        t1 = np.ones((P, t.shape[1] + 1))
        t1[:, :-1] = t
        z = t1 @ self.qT()  # base + Q·t: integer values below 2**53, exact in any summation order
        top = z.argmax(axis=1)
        np.subtract(z[ar, top][:, None], z, out=z)  # r = max(z) - z >= 0
        # v = LUT[(r >> 8) & 255] >> min(r >> 16, 31) is 0 once r >> 16 >= 23 (LUT < 2**23), so r may be
        # clipped to 23 * 2**16: then its little-endian bytes 1 and 2 are the table index and the shift
        np.minimum(z, R_CLIP, out=z)
        rb = z.astype("<i4").view(np.uint8)
        v = LUT32.take(rb[:, 1::4])
        np.right_shift(v, rb[:, 2::4], out=v)
        scale = ((1 << PRECISION) - self.K) / v.sum(axis=1, dtype=np.int64).astype(np.float64)
        vf = v.astype(np.float64)
        vf *= scale[:, None]  # correctly rounded products; floor(sum) <= 2**24 - K
        np.floor(vf, out=vf)
        vf[ar, top] += ((1 << PRECISION) - self.K) - vf.sum(axis=1)  # sums of integers < 2**40: exact
        return vf

    def weights(self, feats: np.ndarray) -> np.ndarray:
        """(P, K) int64 24-bit weights (each >= 1, rows summing to 2**24) for features (P, 6m)."""
        w = self.excess(feats).astype(np.int64)
        w += 1
        return w

    def _excess(self, feats: np.ndarray) -> np.ndarray:
        """:meth:`excess`, split over worker threads (the same numbers: rows are independent)."""
        tasks = min(THREADS, -(-feats.shape[0] // SUB))
        if tasks <= 1:
            return self.excess(feats)
        self.qT()  # the lazy tables, before the threads
        return np.concatenate(list(_pool().map(self.excess, np.array_split(feats, tasks))))

    def _batches(self, idx0: np.ndarray, coded: np.ndarray, known: bool = False):
        """(ys, xs, excess) of batches of positions in coding order (excess: :meth:`excess` rows). A decoder's ``idx0`` must hold
        every earlier wavefront's symbols when a batch is reached (it fills it as it goes), so its
        batches stay within a wavefront; with ``known`` (all of ``idx0`` given: the encoder) they run
        across wavefronts."""
        fronts = wavefronts(coded)
        if known and fronts:
            fronts = [(np.concatenate([y for y, _ in fronts]), np.concatenate([x for _, x in fronts]))]
        for ys, xs in fronts:
            for s in range(0, ys.size, BATCH):
                y, x = ys[s:s + BATCH], xs[s:s + BATCH]
                yield y, x, self._excess(self.features(idx0, y, x))

    def chunks(self, idx0: np.ndarray, coded: np.ndarray):
        """``(symbol, model)`` range-coder chunks of block 0 (h, w; coded where ``coded``), in coding order."""
        from .rangecoder import categorical_from_excess

        for y, x, exc in self._batches(idx0, coded, known=True):
            for j in range(y.size):
                yield idx0[y[j], x[j]:x[j] + 1], categorical_from_excess(exc[j])

    def decode(self, dec, coded: np.ndarray, idx0: np.ndarray | None = None) -> tuple[np.ndarray, list]:
        """Block 0 (h, w) int64 decoded from ``dec`` at the ``coded`` positions and its chunks (what
        :meth:`chunks` gives for it, kept so that the canonical check need not compute them again).
        ``idx0`` (filled in place) holds what is known before: -1 where nothing is (the default
        everywhere), the renumbered wide indices of a v7 file (:meth:`with_wide_rows`)."""
        from .rangecoder import categorical_from_excess

        idx0 = np.full(coded.shape, -1, dtype=np.int64) if idx0 is None else idx0
        done = []
        for y, x, exc in self._batches(idx0, coded):
            for j in range(y.size):
                model = categorical_from_excess(exc[j])
                idx0[y[j], x[j]] = int(dec.decode(model, 1)[0])
                done.append((idx0[y[j], x[j]:x[j] + 1], model))
        return idx0, done

    def code_lengths(self, idx0: np.ndarray, coded: np.ndarray) -> np.ndarray:
        """Ideal code lengths in bits (h, w; 0 where not coded) of block 0 under the model."""
        out = np.zeros(coded.shape, dtype=np.float64)
        for y, x, exc in self._batches(idx0, coded, known=True):
            out[y, x] = 24.0 - np.log2(exc[np.arange(y.size), idx0[y, x]] + 1.0)
        return out
