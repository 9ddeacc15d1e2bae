"""pack / unpack: a header plus a raw or range-coded payload of GQ indices."""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from . import bitpack, countmap, rangecoder
from .header import (HEADER_SIZE, MAX_PAYLOAD, RANGE_SLACK_BITS, FormatError, Header, crc32, encode_header,
                     escape_table_bytes, map_table_bytes, read_header, validate, version_for)
from .context import qrows
from .metadata import decode_metadata, encode_metadata
from .prior import PRECISION, Prior, quantize

SKIP = -1  # an index array entry for a block the prefix layout does not code (its latent is the prior mean)


def _models(header: Header, prior: Prior | None):
    if header.prior == "uniform":
        model = rangecoder.uniform_model(header.K)
        return lambda b: model
    return PriorBlocks(prior)


def _by_table(prior: Prior, b: int, ctx: np.ndarray):
    """``(table, positions)`` groups of block b's symbols whose positions code ``ctx`` blocks: one
    group (all positions, ``None``) for a plain prior; for a count-conditioned prior (v5) one per
    table, in ascending table order, each a boolean mask over the symbols."""
    if not prior.conditional:
        return [(prior.table_index(b), None)]
    tid = prior.tables_for(b, ctx)
    return [(int(t), tid == t) for t in np.unique(tid)]


class PriorBlocks:
    """Block coder with the model's prior: block b's symbols with block b's table (v1, v2), or for a
    count-conditioned prior (v5) grouped by table, ascending, each group in the order of the block's
    coded positions."""

    def __init__(self, prior: Prior):
        self.prior = prior

    def chunks(self, b: int, symbols: np.ndarray, ctx: np.ndarray):
        s = np.asarray(symbols).reshape(-1)
        for t, sel in _by_table(self.prior, b, ctx):
            yield (s if sel is None else s[sel]), self.prior.model(t)

    def decode(self, dec, b: int, k: int, ctx: np.ndarray) -> np.ndarray:
        return _decode_groups(dec, self.prior, b, k, ctx)


def _decode_groups(dec, prior: Prior, b: int, k: int, ctx: np.ndarray) -> np.ndarray:
    out = np.empty(k, dtype=np.int64)
    for t, sel in _by_table(prior, b, ctx):
        if sel is None:
            out[:] = dec.decode(prior.model(t), k)
        elif sel.any():
            out[sel] = dec.decode(prior.model(t), int(sel.sum()))
    return out


# -- version 3: indices wider than the prior's tables (escape coding) -----------------------------
ESCAPE_ONE = 1 << 16  # escape table entries are weights of "not escaped" out of 2**16


def escape_table(indices: np.ndarray, K0: int) -> np.ndarray:
    """The v3 escape table (n_blocks,) u16 for ``indices`` (n, h, w; SKIP entries ignored): per block the
    share of coded indices below ``K0`` (the prior's table size) in units of 2**-16, clipped to 1..65535."""
    z = np.empty(indices.shape[0], dtype=np.uint16)
    for b in range(indices.shape[0]):
        s = indices[b][indices[b] >= 0]
        frac = float((s < K0).mean()) if s.size else 0.5
        z[b] = min(ESCAPE_ONE - 1, max(1, int(round(frac * ESCAPE_ONE))))
    return z


def escape_weights(z: int) -> np.ndarray:
    """The 24-bit weights (2,) of a block's escape flag (0: index < K0, 1: index >= K0) for entry ``z``."""
    return quantize(np.array([[int(z), ESCAPE_ONE - int(z)]], dtype=np.int64))[0]


@functools.lru_cache(maxsize=4)
def _wide(N: int):
    w = quantize(np.ones((1, N), dtype=np.int64))[0]
    return rangecoder.categorical_from_weights(w), float(PRECISION - np.log2(w.min())), float(PRECISION - np.log2(w.max()))


def wide_code_lengths(prior: Prior, K_bits: int, z: np.ndarray, n_blocks: int) -> list[np.ndarray]:
    """Per block, the code length in bits of every index 0..2**K_bits - 1 under v3 escape coding with
    escape table ``z``: the flag, then the block's prior table (index < K0) or the wide table (the rest)."""
    K0 = prior.K
    N = (1 << K_bits) - K0
    wide_w = quantize(np.ones((1, N), dtype=np.int64))[0]
    wide_bits = PRECISION - np.log2(wide_w.astype(np.float64))
    logw = np.log2(prior.weights().astype(np.float64))
    out = []
    for b in range(n_blocks):
        fw = escape_weights(z[b]).astype(np.float64)
        fb0, fb1 = PRECISION - np.log2(fw[0]), PRECISION - np.log2(fw[1])
        out.append(np.concatenate([fb0 + PRECISION - logw[prior.table_index(b)], fb1 + wide_bits]))
    return out


def prefix_bits(prior: Prior, indices: np.ndarray, K_bits: int | None = None) -> np.ndarray:
    """(n + 1, h, w): at each position, the code length in bits of its first c indices of ``indices``
    (n, h, w) when it codes c blocks, c = 0..n, under ``prior`` (a count-conditioned prior picks
    block b's table by c); with ``K_bits`` wider than the prior's tables, under escape coding with
    the escape table these indices would get (v3). Count-map costs are not included. Entries past a
    position's coded blocks (SKIP) are counted as index 0 (rows beyond its count mean nothing)."""
    idx = np.asarray(indices)
    n, h, w = idx.shape
    K0 = prior.K
    kb0 = K0.bit_length() - 1
    logw = np.log2(prior.weights().astype(np.float64))
    wide = K_bits is not None and K_bits > kb0
    if wide:
        z = escape_table(idx, K0)
        N = (1 << K_bits) - K0
        wide_bits = PRECISION - np.log2(quantize(np.ones((1, N), dtype=np.int64))[0].astype(np.float64))
        flags = [PRECISION - np.log2(escape_weights(v).astype(np.float64)) for v in z]

    def lengths(b: int, t: int) -> np.ndarray:
        i = idx[b]
        lw = logw[t][np.clip(i, 0, K0 - 1)]
        if not wide:
            return PRECISION - lw
        return np.where(i < K0, (flags[b][0] + PRECISION) - lw, flags[b][1] + wide_bits[np.clip(i - K0, 0, N - 1)])

    out = np.zeros((n + 1, h, w))
    if not prior.conditional:
        if n:
            out[1:] = np.cumsum([lengths(b, prior.table_index(b)) for b in range(n)], axis=0)
        return out
    prior.check_blocks(n)
    for b in range(n):
        cache: dict[int, np.ndarray] = {}
        for c in range(b + 1, n + 1):
            t = int(prior.select[b, c])
            if t not in cache:
                cache[t] = lengths(b, t)
            out[c] += cache[t]
    return out


class WideBlocks:
    """Block coder of format v3: per coded index an escape flag (block b's escape table weights), then
    block b's flag-0 indices with its prior table and its flag-1 indices minus K0 with the wide table
    (the integer rule on all-ones frequencies over K - K0 values). Within a block: all flags, then all
    flag-0 indices, then all flag-1 indices, each in the order of the block's coded positions (the
    flag-0 indices grouped by table first, as in :class:`PriorBlocks`, with a count-conditioned prior)."""

    def __init__(self, prior: Prior, K_bits: int, z: np.ndarray):
        self.prior, self.K0 = prior, prior.K
        self.flag = [rangecoder.categorical_from_weights(escape_weights(v)) for v in z]
        self.wide = _wide((1 << K_bits) - prior.K)[0]

    def chunks(self, b: int, symbols: np.ndarray, ctx: np.ndarray):
        s = np.asarray(symbols).reshape(-1)
        f = s >= self.K0
        yield f.astype(np.int32), self.flag[b]
        narrow = s[~f]
        for t, sel in _by_table(self.prior, b, np.asarray(ctx)[~f]):
            yield (narrow if sel is None else narrow[sel]), self.prior.model(t)
        yield s[f] - self.K0, self.wide

    def decode(self, dec, b: int, k: int, ctx: np.ndarray) -> np.ndarray:
        f = np.asarray(dec.decode(self.flag[b], k), dtype=bool)
        out = np.empty(k, dtype=np.int64)
        lo = int(k - f.sum())
        if lo:
            out[~f] = _decode_groups(dec, self.prior, b, lo, np.asarray(ctx)[~f])
        if k - lo:
            out[f] = np.asarray(dec.decode(self.wide, k - lo), dtype=np.int64) + self.K0
        return out


class EscapedBlock0:
    """Block 0 of a format v7 file: v3 escape coding (5.7) with the spatial context (5.10) for the
    narrow indices. In block 0's stream come first the flags of its coded positions (the order of
    section 4, block 0's escape-table weights), then its wide indices minus K0 in the same order
    (the wide table), and last its narrow indices in wavefront order, each with the context's
    weights; a neighbour that is wide contributes its own codeword's row of ``rint(32 · codebook)``.
    The interface is :class:`bitstream.context.SpatialContext`'s (``chunks`` / ``decode``); the flag
    and wide models are those of the file's :class:`WideBlocks` coder (block 0's)."""

    def __init__(self, context, blocks: WideBlocks):
        self.context, self.K0 = context, blocks.K0
        self.flag, self.wide = blocks.flag[0], blocks.wide

    def _narrow_view(self, idx0: np.ndarray, wide: np.ndarray):
        """(idx0 with wide index ``wide[j]`` renumbered ``K0 + j``, the context knowing those rows)."""
        ids, inv = np.unique(idx0[wide], return_inverse=True)
        r = idx0.copy()
        r[wide] = self.K0 + inv.reshape(-1)
        rows = qrows(self.context.seed, ids, self.context.m)
        return r, self.context.with_wide_rows(rows)

    def chunks(self, idx0: np.ndarray, coded: np.ndarray):
        s = idx0[coded]
        f = s >= self.K0
        yield f.astype(np.int32), self.flag
        yield s[f] - self.K0, self.wide
        wide = coded & (idx0 >= self.K0)
        r, view = self._narrow_view(idx0, wide)
        yield from view.chunks(r, coded & ~wide)

    def decode(self, dec, coded: np.ndarray) -> tuple[np.ndarray, list]:
        ys, xs = np.nonzero(coded)
        f = np.asarray(dec.decode(self.flag, ys.size), dtype=bool) if ys.size else np.zeros(0, dtype=bool)
        nw = int(f.sum())
        wide_sym = np.asarray(dec.decode(self.wide, nw), dtype=np.int64) if nw else np.zeros(0, dtype=np.int64)
        idx0 = np.full(coded.shape, -1, dtype=np.int64)
        idx0[ys[f], xs[f]] = wide_sym + self.K0
        wide = np.zeros(coded.shape, dtype=bool)
        wide[ys[f], xs[f]] = True
        narrow = coded & ~wide
        r, view = self._narrow_view(idx0, wide)
        r, done = view.decode(dec, narrow, idx0=r)
        idx0[narrow] = r[narrow]
        return idx0, [(f.astype(np.int32), self.flag), (wide_sym, self.wide)] + done


def _escape_bytes(z: np.ndarray, n_blocks: int) -> bytes:
    return np.asarray(z, dtype="<u2").tobytes().ljust(escape_table_bytes(n_blocks), b"\0")


def ext_bits_for(K_bits: int, prior: Prior | None) -> int:
    """Index bits beyond the prior's tables: ``K_bits - log2(prior.K)`` (0 without a prior)."""
    if prior is None:
        return 0
    kb0 = int(prior.K).bit_length() - 1
    if prior.K != 1 << kb0 or kb0 > K_bits:
        raise ValueError(f"prior mismatch: prior has K={prior.K} entries per table, file has K={1 << K_bits} "
                         "(the prior needs K entries, or a power of two below K for wide indices)")
    return K_bits - kb0


def count_table(counts: np.ndarray, n_blocks: int) -> np.ndarray:
    """The prefix layout's count table: the histogram of the counts scaled into u16, every entry >= 1."""
    hist = np.bincount(np.asarray(counts).reshape(-1), minlength=n_blocks + 1).astype(np.float64)
    return np.maximum(1, np.rint(hist * 65535.0 / hist.max())).astype(np.uint16)


def count_model(table: np.ndarray):
    """(constriction model, 24-bit weights) of a count table (the integer rule of the priors)."""
    w = quantize(np.asarray(table, dtype=np.int64)[None])[0]
    return rangecoder.categorical_from_weights(w), w


def count_code_lengths(counts: np.ndarray, n_blocks: int) -> np.ndarray:
    """(n_blocks + 1,) bits each count value costs under the count table these counts are written with."""
    _, w = count_model(count_table(counts, n_blocks))
    return PRECISION - np.log2(w.astype(np.float64))


def _table_bytes(table: np.ndarray, n_blocks: int) -> bytes:
    return np.asarray(table, dtype="<u2").tobytes().ljust(map_table_bytes(n_blocks), b"\0")


def block_counts(indices: np.ndarray) -> np.ndarray:
    """Per-position number of coded blocks of an index array that may hold SKIP (-1) entries.

    Raises ValueError unless the coded blocks of every position are a prefix (no index after a SKIP).
    """
    coded = indices >= 0
    counts = coded.sum(axis=0)
    if not np.array_equal(coded, np.arange(indices.shape[0])[:, None, None] < counts[None]):
        raise ValueError("skipped blocks (-1) must come after the coded ones at every position "
                         "(each position codes a prefix of the blocks)")
    return counts


def pack(header: Header, indices, prior: Prior | None = None, metadata: dict | None = None,
         map_coding: str = "context", spatial: bool = True) -> bytes:
    """Serialise ``indices`` (n_blocks, latent_h, latent_w) ints in [0, 2**K_bits) into .gqc bytes.

    ``header.coding`` picks raw or range coding.  Range coding uses ``prior``
    (prior = "model") or, when ``prior`` is None, the uniform prior
    (prior = "uniform"); raw coding ignores ``prior``.  The derived fields
    (symbol_count, payload_length, CRCs, prior, prior_id, layout, version) are
    computed here.  Entries equal to SKIP (-1) mark blocks that are not coded:
    such a file uses the prefix layout (range coding only), whose count map is context coded
    (format version 5) or, with ``map_coding="table"``, coded with a per-file table (versions 2 to
    4, which older readers read); any other file the dense layout (version 1). A range-coded file whose
    ``prior`` has block 0's spatial context model codes block 0 with it (format version 6, or 7 with
    escape bits; ``spatial=False`` or ``map_coding="table"`` writes the older versions instead).  ``metadata`` ({"exif": bytes, "xmp": bytes}, optional)
    is stored after the payload; a file with metadata is version 4.  ``header`` itself is not modified (``read_header`` of the result gives the
    completed header).  Caller errors raise ValueError.
    """
    if not isinstance(header, Header):
        raise ValueError(f"header must be a bitstream.Header, got {type(header).__name__}")
    if prior is not None and not isinstance(prior, Prior):
        raise ValueError(f"prior must be a bitstream.Prior or None, got {type(prior).__name__}")
    h = dataclasses.replace(header, layout="dense", version=1, ext_bits=0, metadata_length=0)  # derived below
    meta = encode_metadata(metadata)
    validate(h, ValueError, derived=False)
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise ValueError(f"indices must be an integer array, got dtype {idx.dtype}")
    if idx.shape != h.latent_shape:
        raise ValueError(f"indices have shape {idx.shape}, header needs (n_blocks, latent_h, latent_w) = "
                         f"{h.latent_shape}")
    lo, hi = int(idx.min()), int(idx.max())
    skips = lo == SKIP and h.coding == "range"
    if lo < (SKIP if skips else 0) or hi >= h.K:
        raise ValueError(f"indices must be in [0, {h.K}) for K_bits={h.K_bits}, got values in [{lo}, {hi}]"
                         + (" (skipped blocks, -1, need range coding)" if lo == SKIP else ""))
    h.layout = "prefix" if skips else "dense"
    h.ext_bits = ext_bits_for(h.K_bits, prior) if h.coding == "range" else 0
    h.metadata_length = len(meta)
    conditional = h.coding == "range" and prior is not None and prior.conditional
    if map_coding not in ("context", "table"):
        raise ValueError(f"map_coding must be 'context' or 'table', got {map_coding!r}")
    if conditional and map_coding == "table":
        raise ValueError("a count-conditioned prior needs format v5, whose count map is context coded")
    use_ctx = (spatial and map_coding == "context" and h.coding == "range" and prior is not None
               and prior.context is not None)
    h.version = version_for(h.layout, h.ext_bits, h.metadata_length, conditional=conditional,
                            context_map=map_coding == "context", spatial=use_ctx)
    ctx_model = prior.context if use_ctx else None
    counts = block_counts(idx) if h.layout == "prefix" else None
    h.prior_id = bytes(8)
    if h.coding == "raw":
        h.prior = "uniform"
        payload = bitpack.pack_bits(idx, h.K_bits)
    else:
        if prior is None:
            h.prior = "uniform"
        else:
            prior.check_blocks(h.n_blocks)
            h.prior = "model"
            h.prior_id = prior.prior_id
        head, blocks = b"", _models(h, prior)
        if h.ext_bits:
            z = escape_table(idx, prior.K)
            head, blocks = _escape_bytes(z, h.n_blocks), WideBlocks(prior, h.K_bits, z)
            if ctx_model is not None:  # v7
                ctx_model = EscapedBlock0(ctx_model, blocks)
        if counts is None:
            payload = head + rangecoder.encode(idx, blocks, ctx_model)
        elif h.version >= 5:
            payload = head + rangecoder.encode_chunks(
                rangecoder.prefix_chunks(counts, idx, countmap.AdaptiveMap(h.n_blocks), blocks, ctx_model))
        else:
            table = count_table(counts, h.n_blocks)
            payload = _table_bytes(table, h.n_blocks) + head + rangecoder.encode_chunks(
                rangecoder.prefix_chunks(counts, idx, count_model(table)[0], blocks))
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the format's limit of {MAX_PAYLOAD}")
    h.symbol_count = idx.size if counts is None else int(counts.sum())
    h.payload_length = len(payload)
    h.payload_crc = crc32(payload)
    return encode_header(h) + payload + meta


def _split(data) -> tuple[Header, bytes, bytes]:
    """(header, payload, metadata block) of .gqc bytes, with the lengths and the header and payload
    CRCs checked."""
    if not isinstance(data, bytes):
        try:
            data = bytes(memoryview(data).cast("B"))
        except TypeError:
            raise FormatError(f"expected bytes, got {type(data).__name__}") from None
    h = read_header(data)
    avail = len(data) - HEADER_SIZE
    need = h.payload_length + h.metadata_length
    if avail < need:
        raise FormatError(f"truncated payload: header says {h.payload_length} bytes"
                          + (f" + {h.metadata_length} bytes of metadata" if h.metadata_length else "")
                          + f", file has {avail}")
    if avail > need:
        raise FormatError(f"trailing bytes: {avail - need} bytes after the {h.payload_length}-byte payload"
                          + (" and the metadata" if h.metadata_length else ""))
    payload = data[HEADER_SIZE:HEADER_SIZE + h.payload_length]
    if crc32(payload) != h.payload_crc:
        raise FormatError(f"payload CRC mismatch (stored 0x{h.payload_crc:08x}, computed 0x{crc32(payload):08x}): "
                          "the payload is corrupt")
    return h, payload, data[HEADER_SIZE + h.payload_length:]


def read_metadata(data) -> dict:
    """The image metadata a .gqc file carries, ``{"exif": bytes, "xmp": bytes}`` (the kinds present;
    empty for versions 1 to 3). Checks the header, the lengths and the CRCs, not the index payload."""
    return decode_metadata(_split(data)[2])


def unpack(data, prior: Prior | None = None, max_symbols: int | None = None) -> tuple[Header, np.ndarray]:
    """Strictly parse .gqc bytes; returns ``(header, indices)`` with int64 indices (n_blocks, latent_h, latent_w).

    Prefix-layout files (version 2) have SKIP (-1) at the blocks they do not code.
    ``prior`` is needed for files range-coded with the model's prior
    (header.prior == "model") and ignored otherwise.  ``max_symbols``
    optionally caps the size of the index array the caller is willing to decode.
    Every malformed input raises :class:`FormatError`.
    """
    h, payload, meta = _split(data)
    decode_metadata(meta)  # a corrupt metadata block is a corrupt file
    size = h.n_blocks * h.positions
    if max_symbols is not None and size > max_symbols:
        raise FormatError(f"file has {size} symbols, more than the allowed {max_symbols}")
    if h.coding == "raw":
        if not bitpack.padding_ok(payload, h.symbol_count, h.K_bits):
            raise FormatError("padding bits in the last raw byte are not zero")
        return h, bitpack.unpack_bits(payload, h.symbol_count, h.K_bits).reshape(h.latent_shape)
    if h.prior == "model":
        if prior is None:
            raise FormatError("file needs the model's index prior (range-coded with prior 'model'), none was given")
        if not isinstance(prior, Prior):
            raise FormatError(f"prior must be a bitstream.Prior, got {type(prior).__name__}")
        if prior.K != h.K >> h.ext_bits:
            raise FormatError(f"prior mismatch: prior has K={prior.K} entries per table, file needs "
                              f"K={h.K >> h.ext_bits}" + (f" (K={h.K} with {h.ext_bits} escape bits)" if h.ext_bits else ""))
        if prior.prior_id != bytes(h.prior_id):
            raise FormatError(f"prior mismatch: file was coded with prior {bytes(h.prior_id).hex()}, "
                              f"given prior is {prior.prior_id.hex()}")
        prior.check_blocks(h.n_blocks, FormatError)
        if prior.conditional and h.version < 5:
            raise FormatError(f"prior mismatch: a version {h.version} file needs a prior without count conditioning")
        if h.version >= 6 and prior.context is None:
            raise FormatError(f"prior mismatch: a version {h.version} file needs a prior with block 0's context model")
        block_bits = [prior.block_min_bits(b) for b in range(h.n_blocks)]
        if h.version >= 6:
            block_bits[0] = 0.0  # a context's distribution may be arbitrarily peaked
    else:
        block_bits = [float(h.K_bits)] * h.n_blocks
    tb = map_table_bytes(h.n_blocks) if h.layout == "prefix" and h.version < 5 else 0
    blocks = _models(h, prior)
    if h.ext_bits:
        xb = escape_table_bytes(h.n_blocks)
        z = np.frombuffer(payload[tb:tb + 2 * h.n_blocks], dtype="<u2")
        if any(payload[tb + 2 * h.n_blocks:tb + xb]):
            raise FormatError("padding bytes after the escape table are not zero")
        if int(z.min()) < 1:
            raise FormatError("escape table entries must all be >= 1")
        wide_min = _wide(h.K - prior.K)[2]
        for b in range(h.n_blocks):
            fb = PRECISION - np.log2(escape_weights(z[b]).astype(np.float64))
            block_bits[b] = float(min(fb[0] + block_bits[b], fb[1] + wide_min))
        blocks = WideBlocks(prior, h.K_bits, z)
        payload = payload[:tb] + payload[tb + xb:]  # the count table (if any), then the coded words
    if h.layout == "dense":
        least = sum(block_bits) * h.positions
        stream = payload
    elif h.version >= 5:
        map_model = countmap.AdaptiveMap(h.n_blocks)
        least = min(block_bits) * h.symbol_count + countmap.min_bits(h.n_blocks) * h.positions
        stream = payload
    else:
        table = np.frombuffer(payload[:2 * (h.n_blocks + 1)], dtype="<u2")
        if any(payload[2 * (h.n_blocks + 1):tb]):
            raise FormatError("padding bytes after the count table are not zero")
        if int(table.min()) < 1:
            raise FormatError("count table entries must all be >= 1")
        map_model, w = count_model(table)
        least = min(block_bits) * h.symbol_count + (PRECISION - float(np.log2(w.max()))) * h.positions
        stream = payload[tb:]
    if least * (1 - 1e-9) > 8 * len(stream) + RANGE_SLACK_BITS:
        raise FormatError(f"field symbol_count out of range: {h.symbol_count} symbols need at least "
                          f"{least:.0f} bits, the payload has {8 * len(stream)}")
    spatial = prior.context if h.version >= 6 else None
    if h.version == 7:
        spatial = EscapedBlock0(spatial, blocks)
    if h.layout == "dense":
        return h, rangecoder.decode(stream, h.latent_shape, blocks, spatial)
    return h, rangecoder.decode_prefix(stream, h.latent_shape, h.symbol_count, map_model, blocks, spatial)


def truncate(data, n_blocks: int, prior: Prior | None = None, quality: int = 0,
             counts: np.ndarray | None = None) -> bytes:
    """A smaller .gqc file of the same image: every position keeps only its first ``n_blocks``
    blocks (fewer where ``counts``, (latent_h, latent_w), says so), without decoding the image.

    Nested-block training makes each prefix of a position's blocks a code of that position on
    its own, so the result decodes like an encode with fewer blocks (docs/design.md, "Smaller
    files from a .gqc file"). The indices, codebook (seed, K, m), coding mode, prior and metadata
    are kept; ``quality`` goes into the header (0 = unspecified). ``prior`` is needed for files
    range-coded with the model's prior. Raises ValueError for an impossible request (more
    blocks than the file has, counts on a raw file) and FormatError for a malformed file.
    """
    h, idx = unpack(data, prior)
    n = int(n_blocks)
    if not 1 <= n <= h.n_blocks:
        raise ValueError(f"the file has {h.n_blocks} blocks per position; it can keep 1 to {h.n_blocks}, not {n}")
    idx = idx[:n].copy()
    if counts is not None:
        counts = np.asarray(counts)
        if counts.shape != (h.latent_h, h.latent_w) or counts.dtype.kind not in "iu" or \
                counts.size and (int(counts.min()) < 0 or int(counts.max()) > n):
            raise ValueError(f"counts must be ({h.latent_h}, {h.latent_w}) integers in [0, {n}]")
        if h.coding == "raw" and int(counts.min()) < n:
            raise ValueError("a raw file codes every block of every position; only range-coded files keep fewer")
        idx[np.arange(n)[:, None, None] >= counts[None]] = SKIP
    meta = decode_metadata(_split(data)[2])
    out = dataclasses.replace(h, n_blocks=n, quality=int(quality))
    # block 0's context coding as the input had it (a v5 file of a context prior was written without on purpose)
    return pack(out, idx, prior=prior if h.prior == "model" else None, metadata=meta or None, spatial=h.version >= 6)
