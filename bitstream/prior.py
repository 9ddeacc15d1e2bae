"""Integer index priors for range coding and their exact 24-bit quantisation.

A :class:`Prior` holds ``T`` frequency tables over the ``K`` indices (a
``(T, K)`` uint32 array, every entry >= 1).  Block ``b`` of a file (along the
``n_blocks`` axis) is coded with table ``b`` when ``T > 1`` and with table 0
when ``T == 1``.

A *count-conditioned* prior (format version 5) also has a selection array
``select`` (``(B, B + 1)``, entries in ``[0, T)``, ``T >= B``): block ``b`` at a
position that codes ``c`` blocks (``c > b``) is coded with table ``select[b, c]``,
and the first ``B`` tables remain each block's representative table
(:meth:`Prior.table_index`, used by encoders before the counts are known).
A dense file counts as ``c = n_blocks`` at every position.

The range coder works with 24-bit probabilities.  Each table row ``f`` (total
``F``) is turned into integer weights ``w`` (every ``w[i] >= 1``, ``sum(w) ==
2**24``) by exact integer arithmetic (:func:`quantize`)::

    R = 2**24 - K
    c[i] = floor(R * (f[0] + ... + f[i-1]) / F) + i        (c[0] = 0, c[K] = 2**24)
    w[i] = c[i+1] - c[i]

which is constriction's "leaky" quantisation evaluated without floating point
rounding.  The weights, not the raw frequencies, define the code.
"""
from __future__ import annotations

import hashlib
import io
import math
import os
import struct
import zipfile

import numpy as np

from .header import MAX_BLOCKS, MAX_RANGE_K_BITS, FormatError

PRECISION = 24
MAX_ROW_TOTAL = (1 << 32) - 1
FORMAT_TAG = "gqcodec-prior-v1"
FORMAT_TAG_COUNTS = "gqcodec-prior-v2"  # with a ``select`` array (count-conditioned tables)
FORMAT_TAG_CONTEXT = "gqcodec-prior-v3"  # with block 0's spatial context model (``ctx_*`` arrays; format v6)


def quantize(freqs: np.ndarray) -> np.ndarray:
    """Exact 24-bit weights ``(T, K)`` int64 of validated frequency tables (see module docstring)."""
    f = np.asarray(freqs, dtype=np.int64)
    T, K = f.shape
    R = (1 << PRECISION) - K
    F = f.sum(axis=1, keepdims=True)
    # cumulative totals < 2**32 and R < 2**24: the products stay below 2**56, exact in int64
    c_next = (np.cumsum(f, axis=1) * R) // F + np.arange(1, K + 1, dtype=np.int64)
    c = np.concatenate([np.zeros((T, 1), dtype=np.int64), c_next], axis=1)
    return np.diff(c, axis=1)


class Prior:
    """``T`` positive integer frequency tables over ``K`` indices, optionally selected per block and
    position count by ``select`` (see the module docstring)."""

    def __init__(self, freqs, select=None, context=None):
        a = np.asarray(freqs)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2:
            raise ValueError(f"prior tables must be a 2-D (T, K) array, got shape {a.shape}")
        if a.dtype.kind not in "iu":
            raise ValueError(f"prior tables must be integers, got dtype {a.dtype}")
        T, K = a.shape
        if not 1 <= T <= MAX_BLOCKS:
            raise ValueError(f"prior must have 1..{MAX_BLOCKS} tables, got {T}")
        if not 2 <= K <= 1 << MAX_RANGE_K_BITS:
            raise ValueError(f"prior tables must have 2..2**{MAX_RANGE_K_BITS} entries, got {K}")
        if a.min() < 1:
            raise ValueError("prior table entries must all be >= 1 (every index needs a nonzero probability)")
        if int(a.max()) > MAX_ROW_TOTAL:
            raise ValueError("prior table entries must fit in uint32")
        freqs = np.ascontiguousarray(a, dtype=np.uint32)
        if int(freqs.sum(axis=1, dtype=np.uint64).max()) > MAX_ROW_TOTAL:
            raise ValueError(f"each prior table's total must be <= 2**32 - 1 "
                             f"(use Prior.from_counts to rescale histograms)")
        freqs.setflags(write=False)
        self.freqs = freqs
        self.select = None if select is None else _check_select(select, T)
        if context is not None:
            from .context import SpatialContext

            if not isinstance(context, SpatialContext) or context.K != K:
                raise ValueError(f"context must be a bitstream.context.SpatialContext over the prior's {K} indices")
        self.context = context
        self._weights = None
        self._min_bits = None
        self._models: dict = {}
        self._sha = None

    # -- constructors -------------------------------------------------------
    @classmethod
    def uniform(cls, K: int, T: int = 1) -> "Prior":
        """All-ones tables: quantises to exactly ``2**24 / K`` per index when K is a power of two."""
        return cls(np.ones((T, int(K)), dtype=np.uint32))

    @classmethod
    def from_counts(cls, counts, smoothing: float = 1.0) -> "Prior":
        """Positive tables from index histograms ``counts`` ((T, K) or (K,), non-negative).

        Rule: ``x = counts + smoothing`` (add-constant smoothing, ``smoothing > 0``),
        then every row is rescaled to a total of 2**24 (the coder's precision):
        ``f = max(1, rint(x * 2**24 / sum(x)))`` (round half to even).  Row totals
        are therefore 2**24 within +-K/2, far below the 2**32 limit.
        """
        c = np.asarray(counts, dtype=np.float64)
        if c.ndim == 1:
            c = c[None, :]
        if c.ndim != 2 or c.shape[1] < 2:
            raise ValueError(f"counts must be a (T, K) or (K,) array with K >= 2, got shape {np.shape(counts)}")
        if not np.all(np.isfinite(c)) or c.min() < 0:
            raise ValueError("counts must be finite and non-negative")
        smoothing = float(smoothing)
        if not (math.isfinite(smoothing) and smoothing > 0):
            raise ValueError(f"smoothing must be a positive number, got {smoothing}")
        x = c + smoothing
        f = np.rint(x * float(1 << PRECISION) / x.sum(axis=1, keepdims=True))
        return cls(np.maximum(f, 1).astype(np.uint32))

    # -- properties ---------------------------------------------------------
    @property
    def T(self) -> int:
        return self.freqs.shape[0]

    @property
    def K(self) -> int:
        return self.freqs.shape[1]

    def __repr__(self) -> str:
        return f"Prior(T={self.T}, K={self.K}, sha256={self.sha256()[:16]})"

    @property
    def conditional(self) -> bool:
        """Whether the tables depend on the position's block count (files coded with it are version 5)."""
        return self.select is not None

    def __eq__(self, other) -> bool:
        return (isinstance(other, Prior) and np.array_equal(self.freqs, other.freqs)
                and (self.select is None) == (other.select is None)
                and (self.select is None or np.array_equal(self.select, other.select))
                and self.sha256() == other.sha256())

    __hash__ = None

    def sha256(self) -> str:
        """Hex SHA-256 of ``b"<u4" + u32le(T) + u32le(K) + freqs as little-endian uint32 (row-major)``,
        followed for a count-conditioned prior by ``b"select" + u32le(B) + select as little-endian uint16``
        and for a prior with block 0's context model (format v6) by the model's arrays
        (:meth:`bitstream.context.SpatialContext.digest`)."""
        if self._sha is None:
            h = hashlib.sha256(b"<u4")
            h.update(struct.pack("<II", self.T, self.K))
            h.update(self.freqs.astype("<u4", copy=False).tobytes())
            if self.select is not None:
                h.update(b"select" + struct.pack("<I", self.select.shape[0]))
                h.update(self.select.astype("<u2", copy=False).tobytes())
            if self.context is not None:
                self.context.digest(h)
            self._sha = h.hexdigest()
        return self._sha

    @property
    def prior_id(self) -> bytes:
        """The 8 bytes written into headers of files coded with this prior (first bytes of :meth:`sha256`)."""
        return bytes.fromhex(self.sha256()[:16])

    def weights(self) -> np.ndarray:
        """The exact 24-bit coder weights ``(T, K)`` int64 (each row sums to 2**24)."""
        if self._weights is None:
            w = quantize(self.freqs)
            w.setflags(write=False)
            self._weights = w
        return self._weights

    def table_index(self, block: int) -> int:
        """Block ``block``'s table (a count-conditioned prior's representative table of the block)."""
        return block if self.T > 1 else 0

    def tables_for(self, block: int, counts) -> np.ndarray:
        """The table of block ``block`` at positions coding ``counts`` blocks each (int64, counts' shape;
        counts <= block, where the block is not coded, get the representative table)."""
        c = np.asarray(counts, dtype=np.int64)
        t = self.table_index(block)
        if self.select is None:
            return np.full(c.shape, t, dtype=np.int64)
        row = self.select[block].astype(np.int64)
        row[:block + 1] = t
        return row[np.clip(c, 0, row.size - 1)]

    def check_blocks(self, n_blocks: int, err: type = ValueError) -> None:
        if self.select is not None and self.select.shape[0] < n_blocks:
            raise err(f"prior mismatch: the prior selects tables for {self.select.shape[0]} blocks but "
                      f"{n_blocks} blocks are coded")
        if self.T > 1 and self.T < n_blocks:
            raise err(f"prior mismatch: prior has {self.T} tables but {n_blocks} blocks are coded "
                      "(a multi-table prior needs one table per block)")

    def block_min_bits(self, block: int) -> float:
        """The fewest bits one index of block ``block`` can cost under any table it may be coded with."""
        mb = self.min_bits()
        if self.select is None:
            return float(mb[self.table_index(block)])
        return float(mb[self.select[block, block + 1:]].min(initial=mb[self.table_index(block)]))

    def min_bits(self) -> np.ndarray:
        """(T,) float64: the fewest bits any symbol costs under each table, ``24 - log2(max w)``."""
        if self._min_bits is None:
            self._min_bits = PRECISION - np.log2(self.weights().max(axis=1).astype(np.float64))
        return self._min_bits

    def code_lengths(self, indices, counts=None) -> np.ndarray:
        """Ideal code length in bits of each index of ``indices`` (n_blocks, h, w) under the 24-bit weights;
        a count-conditioned prior uses each position's block count ``counts`` (h, w) (default: n_blocks,
        a dense file). Entries at blocks a position does not code (SKIP) mean nothing."""
        idx = np.asarray(indices)
        self.check_blocks(idx.shape[0])
        logw = np.log2(self.weights().astype(np.float64))
        out = np.empty(idx.shape, dtype=np.float64)
        if self.select is not None and counts is None:
            counts = np.full(idx.shape[1:], idx.shape[0])
        for b in range(idx.shape[0]):
            i = np.maximum(idx[b], 0)
            if self.select is None:
                out[b] = PRECISION - logw[self.table_index(b)][i]
            else:
                out[b] = PRECISION - logw[self.tables_for(b, counts), i]
        return out

    def bits(self, indices, counts=None) -> float:
        """Ideal code length in bits of ``indices`` (n_blocks, h, w; SKIP entries not coded) under the 24-bit
        weights (``counts`` as in :meth:`code_lengths`)."""
        idx = np.asarray(indices)
        return float(self.code_lengths(idx, counts)[idx >= 0].sum())

    def model(self, t: int):
        """The constriction Categorical model of table ``t`` (cached)."""
        mdl = self._models.get(t)
        if mdl is None:
            from .rangecoder import categorical_from_weights

            mdl = categorical_from_weights(self.weights()[t])
            self._models[t] = mdl
        return mdl

    # -- files ----------------------------------------------------------------
    def save(self, path) -> None:
        """Write an .npz with ``freqs`` (uint32 (T, K)) and ``format`` = 'gqcodec-prior-v1' (exact path);
        a count-conditioned prior adds ``select`` (uint16 (B, B + 1)) and is 'gqcodec-prior-v2'."""
        buf = io.BytesIO()
        arrays = {"freqs": self.freqs.astype("<u4")}
        tag = FORMAT_TAG
        if self.select is not None:
            arrays["select"], tag = self.select.astype("<u2"), FORMAT_TAG_COUNTS
        if self.context is not None:
            arrays.update(self.context.arrays())
            tag = FORMAT_TAG_CONTEXT
        np.savez_compressed(buf, format=np.array(tag), **arrays)
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(buf.getvalue())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path) -> "Prior":
        """Read a file written by :meth:`save`; malformed files raise FormatError."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if "freqs" not in z.files:
                    raise FormatError(f"{path}: not a prior file (no 'freqs' array)")
                tag = str(z["format"]) if "format" in z.files else FORMAT_TAG
                if tag not in (FORMAT_TAG, FORMAT_TAG_COUNTS, FORMAT_TAG_CONTEXT):
                    raise FormatError(f"{path}: unsupported prior format {tag!r}")
                if (tag == FORMAT_TAG_CONTEXT) != ("ctx_G" in z.files):
                    raise FormatError(f"{path}: prior format {tag!r} "
                                      + ("needs the 'ctx_*' arrays" if tag == FORMAT_TAG_CONTEXT else "has 'ctx_*' arrays"))
                if tag == FORMAT_TAG_CONTEXT:
                    from .context import SpatialContext

                    context = SpatialContext.from_arrays(z)
                else:
                    context = None
                if tag == FORMAT_TAG_COUNTS and "select" not in z.files or tag == FORMAT_TAG and "select" in z.files:
                    raise FormatError(f"{path}: prior format {tag!r} "
                                      + ("needs a 'select' array" if tag == FORMAT_TAG_COUNTS else "has no 'select' array"))
                freqs = z["freqs"]
                select = z["select"] if "select" in z.files else None
        except (FormatError, FileNotFoundError):
            raise
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
            raise FormatError(f"{path}: cannot read prior file: {e}") from None
        try:
            return cls(freqs, select, context)
        except ValueError as e:
            raise FormatError(f"{path}: invalid prior tables: {e}") from None


def _check_select(select, T: int) -> np.ndarray:
    """A validated read-only uint16 copy of a count-conditioned prior's ``select`` array."""
    s = np.asarray(select)
    if s.ndim != 2 or s.shape[0] < 1 or s.shape[1] != s.shape[0] + 1:
        raise ValueError(f"select must be a (B, B + 1) array, got shape {s.shape}")
    if s.dtype.kind not in "iu":
        raise ValueError(f"select must hold integers, got dtype {s.dtype}")
    B = s.shape[0]
    if T < B:
        raise ValueError(f"a count-conditioned prior needs at least one table per block ({B}), has {T}")
    if int(s.min()) < 0 or int(s.max()) >= T:
        raise ValueError(f"select entries must be table numbers in [0, {T})")
    out = np.ascontiguousarray(s, dtype=np.uint16)
    out.setflags(write=False)
    return out
