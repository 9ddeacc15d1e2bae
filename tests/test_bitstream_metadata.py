"""Format v4: image metadata (EXIF, XMP) after the payload (docs/bitstream.md, section 5.8)."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from bitstream import HEADER_SIZE, FormatError, pack, read_header, read_metadata, unpack
from bitstream.metadata import decode_metadata, encode_metadata
from test_bitstream_helpers import edit, make_header, random_indices, skewed_prior, skip_tail

EXIF = b"Exif\0\0MM\0*\0\0\0\x08" + bytes(range(40))
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">photographer</x:xmpmeta>'


def files(rng):
    """(name, header, indices, prior) of every layout: raw, dense range, prefix range, wide (escapes)."""
    prior = skewed_prior(rng, 1 << 8, 2)
    idx = random_indices(rng, 8, 2, 3, 4)
    wide = idx.copy()
    wide[0, 0, 0] = 1000
    return [("raw", make_header(8, coding="raw"), idx, None),
            ("range", make_header(8, coding="range"), idx, prior),
            ("prefix", make_header(8, coding="range"), skip_tail(rng, idx), prior),
            ("wide", make_header(10, coding="range"), wide, prior)]


@pytest.mark.parametrize("meta", [{"exif": EXIF}, {"xmp": XMP}, {"exif": EXIF, "xmp": XMP}])
def test_metadata_round_trip_in_every_layout(meta):
    rng = np.random.default_rng(0)
    for name, h, idx, prior in files(rng):
        plain = pack(h, idx, prior)
        data = pack(h, idx, prior, metadata=meta)
        h0, h4 = read_header(plain), read_header(data)
        # v4 adds metadata to v1-v3 files; a v5 file (the prefix layout's context-coded map) carries it as v5
        assert (h0.version, h4.version) in ((1, 4), (3, 4), (5, 5)), name
        assert (h0.version == 5) == (name == "prefix")
        assert (h4.layout, h4.ext_bits, h4.coding) == (h0.layout, h0.ext_bits, h0.coding)
        assert data[:HEADER_SIZE + h0.payload_length][HEADER_SIZE:] == plain[HEADER_SIZE:]  # same payload
        assert struct.unpack_from("<I", data, 88)[0] == h4.metadata_length == len(data) - len(plain)
        assert h4.file_size == len(data) and h4.to_dict()["metadata_length"] == h4.metadata_length
        assert read_metadata(data) == meta and read_metadata(plain) == {}
        assert np.array_equal(unpack(data, prior)[1], unpack(plain, prior)[1])
    # nothing to store: the lowest version, byte for byte the file without metadata
    h, idx = make_header(8), random_indices(rng, 8, 2, 3, 4)
    assert pack(h, idx, metadata={"exif": b"", "xmp": None}) == pack(h, idx)


def test_damaged_metadata_is_a_format_error():
    rng = np.random.default_rng(1)
    h, idx = make_header(8), random_indices(rng, 8, 2, 3, 4)
    data = pack(h, idx, metadata={"exif": EXIF, "xmp": XMP})
    flipped = bytearray(data)
    flipped[-10] ^= 1
    with pytest.raises(FormatError, match="metadata CRC mismatch"):
        unpack(bytes(flipped))
    with pytest.raises(FormatError, match="metadata CRC mismatch"):
        read_metadata(bytes(flipped))
    with pytest.raises(FormatError, match="truncated payload"):
        unpack(data[:-1])
    with pytest.raises(FormatError, match="trailing bytes"):
        unpack(data + b"\0")
    # metadata_length 0 in a v4 header, or non-zero in a v1 header
    with pytest.raises(FormatError, match="metadata_length out of range"):
        read_header(edit(data, 88, bytes(4)))
    with pytest.raises(FormatError, match="reserved"):
        read_header(edit(pack(h, idx), 88, b"\x01\0\0\0"))


def block(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


@pytest.mark.parametrize("body,words", [
    (b"Exif" + struct.pack("<I", 3) + b"abc" + b"Exif" + struct.pack("<I", 1) + b"x", "repeated or out of order"),
    (b"XMP " + struct.pack("<I", 1) + b"x" + b"Exif" + struct.pack("<I", 1) + b"y", "repeated or out of order"),
    (b"ICCP" + struct.pack("<I", 1) + b"x", "unknown metadata chunk"),
    (b"Exif" + struct.pack("<I", 0) + b"x", "empty metadata chunk"),
    (b"Exif" + struct.pack("<I", 9) + b"abc", "runs past the block"),
    (b"Exif" + struct.pack("<I", 1) + b"a" + b"XMP", "truncated metadata chunk header"),
])
def test_malformed_metadata_blocks(body, words):
    with pytest.raises(FormatError, match=words):
        decode_metadata(block(body))


def test_metadata_writer_rejects_unknown_kinds_and_non_bytes():
    with pytest.raises(ValueError, match="unknown metadata kinds"):
        encode_metadata({"icc": b"x"})
    with pytest.raises(ValueError, match="must be bytes"):
        encode_metadata({"xmp": "text"})
    assert decode_metadata(encode_metadata({"xmp": XMP, "exif": EXIF})) == {"exif": EXIF, "xmp": XMP}
