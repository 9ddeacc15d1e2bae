"""The fixed 96-byte .gqc header (format versions 1 to 7): layout, validation, (de)serialisation.

Everything here is pure Python (``struct``, ``zlib``); nothing imports numpy
or torch, so reading a header is instant.  The byte layout is specified in
``docs/bitstream.md``.
"""
from __future__ import annotations

import dataclasses
import operator
import struct
import zlib
from dataclasses import dataclass, field

MAGIC = b"\x89GQC"
VERSION = 7                # the newest version: this package reads 1 to 7
VERSIONS = (1, 2, 3, 4, 5, 6, 7)
HEADER_SIZE = 96

# little-endian, no padding; the header CRC (last 4 bytes) is not part of this struct
_LAYOUT = struct.Struct("<4sBBBBBBBBH2s16s8sQIIIIQII8s4s")
assert _LAYOUT.size == HEADER_SIZE - 4

MAX_K_BITS = 24          # raw coding; the codebook generator allows K up to 2**24
MAX_RANGE_K_BITS = 23    # range coding: every symbol needs a nonzero 24-bit probability and constriction
                         # cannot build a 2**24-symbol table
MAX_M = 64
MAX_STRIDE = 255
MAX_BLOCKS = 65535
MAX_SIDE = 1 << 20
MAX_PAYLOAD = (1 << 32) - 1
MODEL_ID_BYTES = 16
# A range payload of N bits never holds symbols whose ideal code length (under the coder's 24-bit
# probabilities) exceeds N + RANGE_SLACK_BITS: the coder emits at least the information content
# minus the bits still held in its 64-bit state.
RANGE_SLACK_BITS = 64

COLORS = {"L": 1, "RGB": 3}
CODINGS = {"raw": 0, "range": 1}
PRIORS = {"uniform": 0, "model": 1}
# v2: how the index array is laid out. "dense": every position codes n_blocks indices (the only
# layout of v1); "prefix": each position codes its own number 0..n_blocks of leading blocks (the
# block-count map, coded in the payload before the indices).
LAYOUTS = {"dense": 0, "prefix": 1}
_COLOR_NAMES = {v: k for k, v in COLORS.items()}
_CODING_NAMES = {v: k for k, v in CODINGS.items()}
_PRIOR_NAMES = {v: k for k, v in PRIORS.items()}
_LAYOUT_NAMES = {v: k for k, v in LAYOUTS.items()}


class FormatError(ValueError):
    """The one error for malformed .gqc data (and malformed prior files); the message names the problem."""


def crc32(data: bytes) -> int:
    """CRC-32 (ISO-HDLC / zlib / PNG polynomial), as an unsigned int."""
    return zlib.crc32(data) & 0xFFFFFFFF


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def raw_payload_length(symbol_count: int, K_bits: int) -> int:
    """Bytes of a raw payload: ``ceil(symbol_count * K_bits / 8)``."""
    return _ceil_div(symbol_count * K_bits, 8)


def map_table_bytes(n_blocks: int) -> int:
    """Bytes of a prefix payload's count table: ``n_blocks + 1`` u16 entries, zero-padded to a multiple of 4."""
    return 4 * _ceil_div(2 * (n_blocks + 1), 4)


def escape_table_bytes(n_blocks: int) -> int:
    """Bytes of a v3 payload's escape table: ``n_blocks`` u16 entries, zero-padded to a multiple of 4."""
    return 4 * _ceil_div(2 * n_blocks, 4)


def version_for(layout: str, ext_bits: int = 0, metadata_length: int = 0, conditional: bool = False,
                context_map: bool = True, spatial: bool = False) -> int:
    """The version a writer uses: 6 for files whose block 0 is coded with the prior's spatial context
    model (``spatial``; range coded with the model prior, no escape bits), 7 for those with escape
    bits (``ext_bits`` > 0); 5 for prefix-layout files (their count map context coded; with
    ``context_map`` False, the per-file count table of versions 2 to 4 instead) and for files
    range-coded with a count-conditioned prior; otherwise the lowest that holds the file: 1 for
    dense files (readable by every reader), 2 for the prefix layout, 3 for indices wider than the
    prior's tables (``ext_bits`` > 0), 4 for files that carry image metadata after the payload
    (``metadata_length`` > 0)."""
    if spatial:
        return 7 if ext_bits else 6
    if conditional or (layout == "prefix" and context_map):
        return 5
    if metadata_length:
        return 4
    if ext_bits:
        return 3
    return 1 if layout == "dense" else 2


@dataclass
class Header:
    """A parsed (or to-be-written) .gqc header.

    The caller of :func:`bitstream.pack` fills the image/model fields; ``pack``
    computes ``symbol_count``, ``payload_length``, ``payload_crc``,
    ``prior`` / ``prior_id`` (for range coding) and ``header_crc`` itself.
    """

    model_id: str
    model_hash: bytes
    codebook_seed: int
    K_bits: int
    m: int
    stride: int
    n_blocks: int
    latent_h: int
    latent_w: int
    width: int
    height: int
    color: str = "RGB"
    coding: str = "range"
    prior: str = "uniform"
    quality: int = 0
    symbol_count: int = 0
    payload_length: int = 0
    payload_crc: int = 0
    prior_id: bytes = field(default=bytes(8))
    header_crc: int = 0
    layout: str = "dense"
    version: int = 1
    ext_bits: int = 0  # v3: index bits beyond the prior's tables (which have 2**(K_bits - ext_bits) entries)
    metadata_length: int = 0  # v4: bytes of image metadata (EXIF, XMP) after the payload

    # -- derived ------------------------------------------------------------
    @property
    def K(self) -> int:
        """Codebook size ``2**K_bits``."""
        return 1 << self.K_bits

    @property
    def positions(self) -> int:
        """Latent positions ``latent_h * latent_w``."""
        return self.latent_h * self.latent_w

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """Shape of the index array: ``(n_blocks, latent_h, latent_w)``."""
        return (self.n_blocks, self.latent_h, self.latent_w)

    @property
    def file_size(self) -> int:
        """Size of the whole .gqc file in bytes (header + payload + metadata)."""
        return HEADER_SIZE + self.payload_length + self.metadata_length

    def bpp(self, total_file_bytes: int | None = None) -> float:
        """Bits per pixel of a file of ``total_file_bytes`` (default: :attr:`file_size`)."""
        n = self.file_size if total_file_bytes is None else int(total_file_bytes)
        return 8.0 * n / (self.width * self.height)

    def to_dict(self) -> dict:
        """JSON-friendly dict (hashes as hex strings, CRCs as 0x-prefixed hex)."""
        return {
            "format_version": self.version,
            "model_id": self.model_id,
            "model_hash": bytes(self.model_hash).hex(),
            "codebook_seed": self.codebook_seed,
            "K_bits": self.K_bits,
            "K": self.K,
            "m": self.m,
            "stride": self.stride,
            "n_blocks": self.n_blocks,
            "layout": self.layout,
            "ext_bits": self.ext_bits,
            "latent_h": self.latent_h,
            "latent_w": self.latent_w,
            "width": self.width,
            "height": self.height,
            "color": self.color,
            "coding": self.coding,
            "prior": self.prior,
            "prior_id": bytes(self.prior_id).hex(),
            "quality": self.quality,
            "symbol_count": self.symbol_count,
            "header_bytes": HEADER_SIZE,
            "payload_length": self.payload_length,
            "payload_crc": f"0x{self.payload_crc:08x}",
            "metadata_length": self.metadata_length,
            "header_crc": f"0x{self.header_crc:08x}",
        }

    def replace(self, **changes) -> "Header":
        return dataclasses.replace(self, **changes)


# -- validation -----------------------------------------------------------------
def _int_field(h: Header, name: str, lo: int, hi: int, err: type) -> int:
    v = getattr(h, name)
    if isinstance(v, bool) or not isinstance(v, int):
        try:
            v = operator.index(v)  # numpy integers are fine
        except TypeError:
            raise err(f"field {name} must be an integer, got {type(v).__name__}") from None
    if not lo <= v <= hi:
        raise err(f"field {name} out of range: {v} (must be {lo}..{hi})")
    return v


def check_model_id(model_id, err: type = ValueError) -> bytes:
    if not isinstance(model_id, str):
        raise err(f"field model_id must be a str, got {type(model_id).__name__}")
    try:
        b = model_id.encode("ascii")
    except UnicodeEncodeError:
        raise err(f"field model_id out of range: {model_id!r} is not ASCII") from None
    if not 1 <= len(b) <= MODEL_ID_BYTES:
        raise err(f"field model_id out of range: {len(b)} bytes (must be 1..{MODEL_ID_BYTES})")
    if any(c < 0x21 or c > 0x7E for c in b):
        raise err(f"field model_id out of range: {model_id!r} (printable ASCII without spaces only)")
    return b


def validate(h: Header, err: type = FormatError, derived: bool = True) -> None:
    """Check every field and the cross-field rules; raise ``err`` naming the first problem.

    With ``derived=False`` the computed fields (symbol_count, payload_length,
    CRCs, prior_id) are not checked (used by ``pack`` before it fills them).
    """
    if h.version not in VERSIONS:
        raise err(f"unsupported version {h.version} (this reader supports {', '.join(map(str, VERSIONS))})")
    if h.layout not in LAYOUTS:
        raise err(f"field layout out of range: {h.layout!r} (must be 'dense' or 'prefix')")
    if h.version == 1 and h.layout != "dense":
        raise err(f"field layout out of range: version 1 files are dense, got {h.layout!r}")
    e = _int_field(h, "ext_bits", 0, MAX_K_BITS, err)
    if (h.version == 3 and e == 0) or (h.version < 3 and e > 0):
        raise err(f"field ext_bits out of range: {e} (version 3 files have ext_bits >= 1, "
                  "versions 1 and 2 have none)")
    ml = _int_field(h, "metadata_length", 0, MAX_PAYLOAD, err)
    if (h.version == 4 and ml == 0) or (h.version < 4 and ml > 0):
        raise err(f"field metadata_length out of range: {ml} (version 4 files carry metadata, "
                  "versions 1 to 3 none)")
    check_model_id(h.model_id, err)
    if not isinstance(h.model_hash, (bytes, bytearray)) or len(h.model_hash) != 8:
        raise err("field model_hash out of range: must be 8 bytes")
    _int_field(h, "codebook_seed", 0, (1 << 64) - 1, err)
    k = _int_field(h, "K_bits", 1, MAX_K_BITS, err)
    _int_field(h, "m", 1, MAX_M, err)
    s = _int_field(h, "stride", 1, MAX_STRIDE, err)
    n = _int_field(h, "n_blocks", 1, MAX_BLOCKS, err)
    W = _int_field(h, "width", 1, MAX_SIDE, err)
    H = _int_field(h, "height", 1, MAX_SIDE, err)
    lh = _int_field(h, "latent_h", 1, (1 << 32) - 1, err)
    lw = _int_field(h, "latent_w", 1, (1 << 32) - 1, err)
    _int_field(h, "quality", 0, 255, err)
    if h.color not in COLORS:
        raise err(f"field color out of range: {h.color!r} (must be 'RGB' or 'L')")
    if h.coding not in CODINGS:
        raise err(f"field coding out of range: {h.coding!r} (must be 'raw' or 'range')")
    if derived and h.prior not in PRIORS:
        raise err(f"field prior out of range: {h.prior!r} (must be 'uniform' or 'model')")
    if lh != _ceil_div(H, s):
        raise err(f"field latent_h inconsistent: {lh} != ceil(height {H} / stride {s}) = {_ceil_div(H, s)}")
    if lw != _ceil_div(W, s):
        raise err(f"field latent_w inconsistent: {lw} != ceil(width {W} / stride {s}) = {_ceil_div(W, s)}")
    if h.coding == "range" and k > MAX_RANGE_K_BITS:
        raise err(f"field K_bits out of range for range coding: {k} (range coding supports 1..{MAX_RANGE_K_BITS}; "
                  f"use raw coding)")
    if h.layout == "prefix" and h.coding != "range":
        raise err("field layout out of range: the prefix layout needs range coding")
    if e and (e >= k or h.coding != "range"):
        raise err(f"field ext_bits out of range: {e} (needs range coding and ext_bits < K_bits = {k})")
    if not derived:
        return
    if e and h.prior != "model":
        raise err("field prior out of range: version 3 files (ext_bits > 0) are coded with the model prior")
    if h.version >= 5 and h.coding != "range":
        raise err(f"field coding out of range: version {h.version} files are range coded")
    if h.version == 6 and (h.prior != "model" or e):
        raise err("field prior out of range: version 6 files are coded with the model prior, without escape bits")
    if h.version == 7 and (h.prior != "model" or not e):
        raise err("field prior out of range: version 7 files are coded with the model prior, with escape bits")
    sc = _int_field(h, "symbol_count", 0, (1 << 64) - 1, err)
    if h.layout == "dense":
        count = n * lh * lw
        if sc != count:
            raise err(f"field symbol_count inconsistent: {sc} != n_blocks*latent_h*latent_w = {count}")
    else:
        count = sc
        if sc > n * lh * lw:
            raise err(f"field symbol_count inconsistent: {sc} > n_blocks*latent_h*latent_w = {n * lh * lw}")
    pl = _int_field(h, "payload_length", 0, MAX_PAYLOAD, err)
    _int_field(h, "payload_crc", 0, (1 << 32) - 1, err)
    if not isinstance(h.prior_id, (bytes, bytearray)) or len(h.prior_id) != 8:
        raise err("field prior_id out of range: must be 8 bytes")
    if h.coding == "raw":
        if h.prior != "uniform":
            raise err(f"field prior out of range: raw files record prior 'uniform', got {h.prior!r}")
        need = raw_payload_length(count, k)
        if pl != need:
            raise err(f"length mismatch: raw payload_length is {pl}, {count} symbols at {k} bits need {need} bytes")
    else:
        table = (map_table_bytes(n) if h.layout == "prefix" and h.version < 5 else 0) + (escape_table_bytes(n) if e else 0)
        if pl < table + 4 or pl % 4:
            raise err(f"length mismatch: range payload_length {pl} is not a multiple of 4 of at least "
                      f"{table + 4} bytes")
        if h.prior == "uniform" and count * k > 8 * (pl - table) + RANGE_SLACK_BITS:
            raise err(f"field symbol_count out of range: {count} symbols at {k} bits each cannot fit in a "
                      f"{pl}-byte range payload")
    if (h.prior == "model") != any(h.prior_id):
        raise err("field prior_id out of range: must be non-zero exactly when prior is 'model'")


# -- (de)serialisation ----------------------------------------------------------
def encode_header(h: Header) -> bytes:
    """The 96 header bytes of a fully filled, valid header (header_crc computed here)."""
    validate(h, ValueError)
    body = _LAYOUT.pack(MAGIC, h.version, h.K_bits, h.m, h.stride, COLORS[h.color], CODINGS[h.coding],
                        PRIORS[h.prior], h.quality, h.n_blocks, bytes([LAYOUTS[h.layout], h.ext_bits]),
                        check_model_id(h.model_id).ljust(MODEL_ID_BYTES, b"\0"), bytes(h.model_hash),
                        h.codebook_seed, h.width, h.height, h.latent_h, h.latent_w, h.symbol_count,
                        h.payload_length, h.payload_crc, bytes(h.prior_id), struct.pack("<I", h.metadata_length))
    return body + struct.pack("<I", crc32(body))


def read_header(data) -> Header:
    """Parse and validate the header at the start of ``data`` (at least HEADER_SIZE bytes).

    Only the header is examined (its CRC included): ``data`` may be the whole
    file or just its first ``HEADER_SIZE`` bytes.  Raises :class:`FormatError`.
    """
    try:
        data = memoryview(data).cast("B")
    except TypeError:
        raise FormatError(f"expected bytes, got {type(data).__name__}") from None
    n = len(data)
    if n < len(MAGIC):
        raise FormatError(f"truncated header: {n} bytes, a .gqc header needs {HEADER_SIZE}")
    if bytes(data[:4]) != MAGIC:
        raise FormatError(f"bad magic {bytes(data[:4])!r}: not a .gqc file (expected {MAGIC!r})")
    if n < 5:
        raise FormatError(f"truncated header: {n} bytes, a .gqc header needs {HEADER_SIZE}")
    if data[4] not in VERSIONS:
        raise FormatError(f"unsupported version {data[4]} (this reader supports {', '.join(map(str, VERSIONS))})")
    if n < HEADER_SIZE:
        raise FormatError(f"truncated header: {n} bytes, a .gqc header needs {HEADER_SIZE}")
    raw = bytes(data[:HEADER_SIZE])
    body, (stored_crc,) = raw[:-4], struct.unpack("<I", raw[-4:])
    if crc32(body) != stored_crc:
        raise FormatError(f"header CRC mismatch (stored 0x{stored_crc:08x}, computed 0x{crc32(body):08x}): "
                          "the header is corrupt")
    (_, version, K_bits, m, stride, color, coding, prior, quality, n_blocks, res1, model_id, model_hash, seed,
     width, height, lh, lw, symbol_count, payload_length, payload_crc, prior_id, res2) = _LAYOUT.unpack(body)
    if version == 1 and any(res1):
        raise FormatError("reserved bytes at offset 14..15 are not zero")
    if version == 2 and res1[1]:
        raise FormatError("reserved byte at offset 15 is not zero")
    if res1[0] not in _LAYOUT_NAMES:
        raise FormatError(f"field layout out of range: {res1[0]} (must be 0 = dense or 1 = prefix)")
    if version < 4 and any(res2):
        raise FormatError("reserved bytes at offset 88..91 are not zero")
    if color not in _COLOR_NAMES:
        raise FormatError(f"field color out of range: {color} (must be 1 = L or 3 = RGB)")
    if coding not in _CODING_NAMES:
        raise FormatError(f"field coding out of range: {coding} (must be 0 = raw or 1 = range)")
    if prior not in _PRIOR_NAMES:
        raise FormatError(f"field prior out of range: {prior} (must be 0 = uniform or 1 = model)")
    name = model_id.rstrip(b"\0")
    if b"\0" in name:
        raise FormatError("field model_id out of range: bytes after the first NUL must be NUL")
    try:
        name_s = name.decode("ascii")
    except UnicodeDecodeError:
        raise FormatError("field model_id out of range: not ASCII") from None
    h = Header(model_id=name_s, model_hash=model_hash, codebook_seed=seed, K_bits=K_bits, m=m, stride=stride,
               n_blocks=n_blocks, latent_h=lh, latent_w=lw, width=width, height=height,
               color=_COLOR_NAMES[color], coding=_CODING_NAMES[coding], prior=_PRIOR_NAMES[prior],
               quality=quality, symbol_count=symbol_count, payload_length=payload_length,
               payload_crc=payload_crc, prior_id=prior_id, header_crc=stored_crc,
               layout=_LAYOUT_NAMES[res1[0]], version=version, ext_bits=res1[1] if version >= 3 else 0,
               metadata_length=struct.unpack("<I", res2)[0] if version >= 4 else 0)
    validate(h, FormatError)
    return h
