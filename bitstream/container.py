"""pack / unpack: a header plus a raw or range-coded payload of GQ indices."""
from __future__ import annotations

import dataclasses

import numpy as np

from . import bitpack, rangecoder
from .header import (HEADER_SIZE, MAX_PAYLOAD, RANGE_SLACK_BITS, FormatError, Header, crc32, encode_header,
                     read_header, validate)
from .prior import Prior


def _models(header: Header, prior: Prior | None):
    if header.prior == "uniform":
        model = rangecoder.uniform_model(header.K)
        return lambda b: model
    return lambda b: prior.model(prior.table_index(b))


def pack(header: Header, indices, prior: Prior | None = None) -> bytes:
    """Serialise ``indices`` (n_blocks, latent_h, latent_w) ints in [0, 2**K_bits) into .gqc bytes.

    ``header.coding`` picks raw or range coding.  Range coding uses ``prior``
    (prior = "model") or, when ``prior`` is None, the uniform prior
    (prior = "uniform"); raw coding ignores ``prior``.  The derived fields
    (symbol_count, payload_length, CRCs, prior, prior_id) are computed here;
    ``header`` itself is not modified (``read_header`` of the result gives the
    completed header).  Caller errors raise ValueError.
    """
    if not isinstance(header, Header):
        raise ValueError(f"header must be a bitstream.Header, got {type(header).__name__}")
    h = dataclasses.replace(header)
    validate(h, ValueError, derived=False)
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise ValueError(f"indices must be an integer array, got dtype {idx.dtype}")
    if idx.shape != h.latent_shape:
        raise ValueError(f"indices have shape {idx.shape}, header needs (n_blocks, latent_h, latent_w) = "
                         f"{h.latent_shape}")
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= h.K:
        raise ValueError(f"indices must be in [0, {h.K}) for K_bits={h.K_bits}, got values in [{lo}, {hi}]")
    h.prior_id = bytes(8)
    if h.coding == "raw":
        h.prior = "uniform"
        payload = bitpack.pack_bits(idx, h.K_bits)
    else:
        if prior is None:
            h.prior = "uniform"
        else:
            if not isinstance(prior, Prior):
                raise ValueError(f"prior must be a bitstream.Prior or None, got {type(prior).__name__}")
            if prior.K != h.K:
                raise ValueError(f"prior mismatch: prior has K={prior.K} entries per table, file has K={h.K}")
            prior.check_blocks(h.n_blocks)
            h.prior = "model"
            h.prior_id = prior.prior_id
        payload = rangecoder.encode(idx, _models(h, prior))
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the format's limit of {MAX_PAYLOAD}")
    h.symbol_count = idx.size
    h.payload_length = len(payload)
    h.payload_crc = crc32(payload)
    return encode_header(h) + payload


def unpack(data, prior: Prior | None = None, max_symbols: int | None = None) -> tuple[Header, np.ndarray]:
    """Strictly parse .gqc bytes; returns ``(header, indices)`` with int64 indices (n_blocks, latent_h, latent_w).

    ``prior`` is needed for files range-coded with the model's prior
    (header.prior == "model") and ignored otherwise.  ``max_symbols``
    optionally caps the number of indices the caller is willing to decode.
    Every malformed input raises :class:`FormatError`.
    """
    if not isinstance(data, bytes):
        try:
            data = bytes(memoryview(data).cast("B"))
        except TypeError:
            raise FormatError(f"expected bytes, got {type(data).__name__}") from None
    h = read_header(data)
    avail = len(data) - HEADER_SIZE
    if avail < h.payload_length:
        raise FormatError(f"truncated payload: header says {h.payload_length} bytes, file has {avail}")
    if avail > h.payload_length:
        raise FormatError(f"trailing bytes: {avail - h.payload_length} bytes after the {h.payload_length}-byte payload")
    payload = data[HEADER_SIZE:]
    if crc32(payload) != h.payload_crc:
        raise FormatError(f"payload CRC mismatch (stored 0x{h.payload_crc:08x}, computed 0x{crc32(payload):08x}): "
                          "the payload is corrupt")
    if max_symbols is not None and h.symbol_count > max_symbols:
        raise FormatError(f"file has {h.symbol_count} symbols, more than the allowed {max_symbols}")
    if h.coding == "raw":
        if not bitpack.padding_ok(payload, h.symbol_count, h.K_bits):
            raise FormatError("padding bits in the last raw byte are not zero")
        return h, bitpack.unpack_bits(payload, h.symbol_count, h.K_bits).reshape(h.latent_shape)
    if h.prior == "model":
        if prior is None:
            raise FormatError("file needs the model's index prior (range-coded with prior 'model'), none was given")
        if not isinstance(prior, Prior):
            raise FormatError(f"prior must be a bitstream.Prior, got {type(prior).__name__}")
        if prior.K != h.K:
            raise FormatError(f"prior mismatch: prior has K={prior.K} entries per table, file has K={h.K}")
        if prior.prior_id != bytes(h.prior_id):
            raise FormatError(f"prior mismatch: file was coded with prior {bytes(h.prior_id).hex()}, "
                              f"given prior is {prior.prior_id.hex()}")
        prior.check_blocks(h.n_blocks, FormatError)
        mb = prior.min_bits()
        per_block = h.latent_h * h.latent_w
        least = sum(float(mb[prior.table_index(b)]) for b in range(h.n_blocks)) * per_block
        if least * (1 - 1e-9) > 8 * h.payload_length + RANGE_SLACK_BITS:
            raise FormatError(f"field symbol_count out of range: {h.symbol_count} symbols need at least "
                              f"{least:.0f} bits under the prior, the payload has {8 * h.payload_length}")
    return h, rangecoder.decode(payload, h.latent_shape, _models(h, prior))
