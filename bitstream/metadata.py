"""Format v4's metadata block: the image's EXIF and XMP bytes, stored after the payload.

The block is a sequence of chunks, each a 4-byte ASCII type, a u32 length and that many bytes,
in the order of ``KINDS`` (each kind at most once, never empty), followed by the CRC-32 of
everything before it (docs/bitstream.md, section 5.8). Pure Python.
"""
from __future__ import annotations

import struct

from .header import MAX_PAYLOAD, FormatError, crc32

# metadata kind -> chunk type, in the order chunks are written
KINDS = {"exif": b"Exif", "xmp": b"XMP "}
_TYPES = {v: k for k, v in KINDS.items()}
_ORDER = list(KINDS)


def encode_metadata(metadata: dict | None) -> bytes:
    """The metadata block of ``{"exif": bytes, "xmp": bytes}`` (either may be missing or empty);
    b"" when there is nothing to store. Unknown kinds raise ValueError."""
    metadata = dict(metadata or {})
    unknown = set(metadata) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown metadata kinds {sorted(unknown)} (known: {', '.join(KINDS)})")
    body = b""
    for kind, tag in KINDS.items():
        value = metadata.get(kind)
        if value is None or len(value) == 0:
            continue
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise ValueError(f"metadata {kind!r} must be bytes, got {type(value).__name__}")
        body += tag + struct.pack("<I", len(value)) + bytes(value)
    if not body:
        return b""
    if len(body) + 4 > MAX_PAYLOAD:
        raise ValueError(f"metadata of {len(body)} bytes exceeds the format's limit of {MAX_PAYLOAD}")
    return body + struct.pack("<I", crc32(body))


def decode_metadata(block: bytes) -> dict:
    """``{"exif": bytes, "xmp": bytes}`` (the kinds present) of a metadata block; FormatError if malformed."""
    if len(block) == 0:
        return {}
    if len(block) < 4 + 8 + 1:
        raise FormatError(f"metadata block of {len(block)} bytes is too short (a chunk and a CRC need 13)")
    body, (stored,) = block[:-4], struct.unpack("<I", block[-4:])
    if crc32(body) != stored:
        raise FormatError(f"metadata CRC mismatch (stored 0x{stored:08x}, computed 0x{crc32(body):08x}): "
                          "the metadata is corrupt")
    out, pos, last = {}, 0, -1
    while pos < len(body):
        if len(body) - pos < 8:
            raise FormatError("truncated metadata chunk header")
        tag, (n,) = body[pos:pos + 4], struct.unpack("<I", body[pos + 4:pos + 8])
        if tag not in _TYPES:
            raise FormatError(f"unknown metadata chunk type {tag!r}")
        kind = _TYPES[tag]
        if _ORDER.index(kind) <= last:
            raise FormatError(f"metadata chunk {tag!r} repeated or out of order")
        if n == 0:
            raise FormatError(f"empty metadata chunk {tag!r}")
        if n > len(body) - pos - 8:
            raise FormatError(f"metadata chunk {tag!r} of {n} bytes runs past the block")
        out[kind] = bytes(body[pos + 8:pos + 8 + n])
        last, pos = _ORDER.index(kind), pos + 8 + n
    return out
