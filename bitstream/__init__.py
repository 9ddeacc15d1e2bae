"""The versioned .gqc bitstream of gqcodec (specified in ``docs/bitstream.md``).

Imports numpy only (constriction is loaded on first range-coding use, torch
never), so header parsing is instant::

    >>> import bitstream
    >>> h = bitstream.read_header(data)          # Header (validated, CRC checked)
    >>> h, idx = bitstream.unpack(data, prior)   # idx: int64 (n_blocks, latent_h, latent_w)
    >>> data = bitstream.pack(h, idx, prior)     # coding from h.coding ("raw" | "range")
    >>> bitstream.read_metadata(data)            # {"exif": bytes, "xmp": bytes} of v4 files, else {}
    >>> small = bitstream.truncate(data, 4, prior)  # the same image with its first 4 blocks per position

Every malformed input raises :class:`FormatError` (a ValueError).
"""
from . import countmap
from .container import SKIP, count_code_lengths, count_model, count_table, escape_table, pack, prefix_bits, read_metadata, truncate, unpack, wide_code_lengths
from .header import HEADER_SIZE, MAGIC, VERSION, FormatError, Header, crc32, read_header
from .prior import Prior

__all__ = ["FormatError", "HEADER_SIZE", "Header", "MAGIC", "Prior", "SKIP", "VERSION", "count_code_lengths", "count_model",
           "count_table",
           "crc32", "escape_table", "pack", "prefix_bits", "read_header", "read_metadata", "truncate", "unpack", "wide_code_lengths"]
