"""A shipped model without its network: its registry entry, quality ladder, index prior and the
identity written into its files.

Nothing here imports torch (numpy, the registry and the bitstream package only), so what needs no
network starts in a fraction of a second: checking a file against the installed model, and making a
lower quality of a .gqc file by keeping a prefix of each position's blocks (``reduce(fast=True)``).
:class:`gqcodec.codec.Codec` is a ModelCard with the network loaded.
"""
from __future__ import annotations

import numpy as np

import bitstream
from bitstream import Header

from . import zoo
from .config import STRIDE

MAX_EXT_BITS = 6     # decoders accept files whose codebook is up to 2**6 times the model's (escape coding, v3)


class CodecError(ValueError):
    """A request the codec cannot serve (unknown quality, wrong model, ...)."""


class ModelCard:
    """An installed model's quality ladder, index prior and header identity (no network)."""

    def __init__(self, name: str | None = None):
        e = zoo.entry(name)
        self.name = e["name"]
        self.entry = e
        self.config = zoo.model_config(self.name)
        self.prior = zoo.load_prior(self.name)
        self.hash = zoo.model_hash(self.name)
        self.ladder = {int(q): int(n) for q, n in e["ladder"].items()}
        self.default_quality = int(e.get("default_quality", sorted(self.ladder)[len(self.ladder) // 2]))
        self.wide_bits = {int(q): int(b) for q, b in e.get("index_bits", {}).items()}
        self.escape_guess = {int(q): float(v) for q, v in e.get("escape_share", {}).items()}
        # block 0 searched under the prior's spatial context model with this multiple of the quality's
        # RDOQ strength (registry ``context_rdoq``; 0 or absent: under its histogram like the other blocks)
        self.context_rdoq_scale = float((e.get("context_rdoq") or {}).get("scale", 0.0))

    @property
    def qualities(self) -> list[int]:
        return sorted(self.ladder)

    def n_blocks(self, quality: int | None) -> int:
        q = self.default_quality if quality is None else int(quality)
        if q not in self.ladder:
            raise CodecError(f"quality {q} not available for model {self.name} (choose from {self.qualities})")
        return self.ladder[q]

    def index_bits(self, quality: int | None) -> int:
        """log2 of the codebook size a quality searches: the model's K_bits, or more where the
        registry widens the codebook (``index_bits``; such files are format v3, escape coding)."""
        q = self.default_quality if quality is None else int(quality)
        return self.wide_bits.get(q, self.config.K_bits)

    def rdoq_for(self, quality: int | None) -> float:
        """The tuned RDOQ strength for a quality (a per-quality override, else the model's default)."""
        return zoo.rdoq_strength(self.entry, self.default_quality if quality is None else quality)

    def adaptive_lambda(self, quality: int | None) -> float | None:
        """The tuned rate-distortion multiplier of the adaptive layout for a quality (None: not tuned)."""
        q = self.default_quality if quality is None else int(quality)
        v = self.entry.get("adaptive_lambda", {}).get(str(q))
        return None if v is None else float(v)

    def check_header(self, header: Header) -> None:
        """CodecError unless a file with this header was made by this model (name, hash, codebook)."""
        cfg = self.config
        if header.model_id != self.name:
            raise CodecError(f"file was made by model '{header.model_id}', this codec is '{self.name}'")
        if header.model_hash != self.hash:
            raise CodecError(f"file was made by a different version of model '{self.name}' "
                             f"(hash {header.model_hash.hex()}, installed {self.hash.hex()})")
        if (header.codebook_seed, header.m, header.stride) != (cfg.seed, cfg.m, STRIDE) or \
                not cfg.K_bits <= header.K_bits <= cfg.K_bits + MAX_EXT_BITS:
            raise CodecError("file's codebook (seed, K, m, stride) does not match the model")
        if header.n_blocks > cfg.blocks:
            raise CodecError(f"file has {header.n_blocks} blocks per position, model has {cfg.blocks}")

    # -- smaller files from a file (gqcodec reduce) ------------------------------------------
    def reduce(self, data: bytes, quality: int | None = None, fast: bool = False,
               max_bytes: int | None = None, max_bpp: float | None = None) -> bytes:
        """A smaller file of the same image from .gqc bytes, at a lower ``quality`` of this model,
        without the original image and without a new GQ search: the file's indices are kept.

        The nested blocks make the first n(q) blocks of every position a code on their own.
        ``fast``: keep exactly those (``bitstream.truncate``: no decoding, milliseconds), which
        keeps the source quality's per-position choices and costs ~10 % more bits than encoding
        the original at ``quality`` (docs/design.md). Default: choose each position's block count
        again as the adaptive encoder would at ``quality`` (squared error + lambda_q * bits), with
        the decoded file standing in for the original and no position keeping more blocks than
        it had; n(q) + 2 decodes, and on Kodak the same rate-distortion as encoding the original.
        That needs the network (:class:`gqcodec.codec.Codec`); a bare ModelCard does only ``fast``.
        Raw files and models without a tuned adaptive layout are reduced the fast way. The
        header keeps the file's codebook width (K) and metadata and records ``quality``.

        ``max_bytes`` / ``max_bpp`` instead of ``quality``: the highest quality whose reduced file
        fits (the file itself when it already does), bisecting the qualities the file can be
        reduced to; CodecError when even the lowest does not fit.
        """
        header = bitstream.read_header(data)
        self.check_header(header)
        if max_bytes is not None or max_bpp is not None:
            if quality is not None:
                raise CodecError("give a quality or a size limit (max_bytes / max_bpp), not both")
            return self._reduce_to_size(data, header, fast, *size_limit(max_bytes, max_bpp, header.width, header.height))
        if quality is None:
            raise CodecError("give the quality to reduce to (or a size limit)")
        return self._reduce(data, header, int(quality), fast, {})

    def reduce_targets(self, n_blocks: int, quality: int, fast: bool = False, coding: str = "range") -> list[int]:
        """The qualities (ascending) a file with ``n_blocks`` blocks per position, written at
        ``quality``, can be reduced to: every one with fewer blocks; with as many, only lower tuned
        ones, whose counts are chosen again (so not with ``fast`` or raw coding)."""
        recount = not fast and coding == "range" and self.prior is not None
        return [q for q in self.qualities if self.n_blocks(q) < n_blocks
                or (self.n_blocks(q) == n_blocks and recount and q < quality and self.adaptive_lambda(q) is not None)]

    def _reduce(self, data: bytes, header: Header, q: int, fast: bool, work: dict) -> bytes:
        """``reduce`` to quality ``q``; ``work`` carries what calls on the same file share."""
        n = self.n_blocks(q)
        if n > header.n_blocks:
            raise CodecError(f"quality {q} keeps {n} blocks per position, the file has only {header.n_blocks}: "
                             "a file can only be reduced (encode the original image again for more)")
        lam = self.adaptive_lambda(q)
        if fast or header.coding == "raw" or lam is None or self.prior is None:
            if n == header.n_blocks:
                raise CodecError(f"quality {q} keeps {n} blocks per position, as many as the file has: "
                                 + ("a raw file cannot be reduced further at this quality" if header.coding == "raw"
                                    else "only re-choosing the counts (without fast) can make it smaller"))
            return bitstream.truncate(data, n, prior=self.prior, quality=q)
        return self._recounted(data, header, q, n, lam, work)

    def _recounted(self, data: bytes, header: Header, q: int, n: int, lam: float, work: dict) -> bytes:
        """The file reduced to quality ``q`` (``n`` blocks) with each position's count chosen again
        (``Codec`` decodes for it)."""
        raise CodecError("choosing the block counts again needs the model's decoder (gqcodec.load); "
                         "without it only a fast reduction is possible")

    def _reduce_to_size(self, data: bytes, header: Header, fast: bool, limit: int, what: str) -> bytes:
        if len(data) <= limit:
            return data
        qs = self.reduce_targets(header.n_blocks, header.quality, fast, header.coding)
        if not qs:
            raise CodecError(f"the file ({len(data)} bytes) does not fit in {what} and has no lower quality to "
                             f"reduce to ({header.n_blocks} blocks per position)")
        work: dict = {}
        best, smallest = best_that_fits(qs, lambda q: self._reduce(data, header, q, fast, work), limit)
        if best is None:
            raise CodecError(f"the file does not fit in {what}: reduced to quality {qs[0]}, the lowest, "
                             f"it needs {smallest} bytes")
        return best


def check_installed(header: Header, what: str = "file") -> str:
    """The name of the model a .gqc ``header`` names; CodecError (naming ``what``, the file) when
    that model is not installed."""
    if header.model_id not in zoo.model_names():
        raise CodecError(f"{what} was made by model '{header.model_id}', which is not installed "
                         f"(installed: {', '.join(zoo.model_names()) or 'none'})")
    return header.model_id


def card_for(header: Header, what: str = "file") -> ModelCard:
    """The ModelCard of the model named in a .gqc ``header`` (see :func:`check_installed`)."""
    return ModelCard(check_installed(header, what))


def reducer_for(header: Header, fast: bool = False, device: str = "cpu", what: str = "file") -> ModelCard:
    """What reduces files with this ``header``: with ``fast``, the ModelCard of the model the file
    names (no network, no torch); otherwise that model's loaded Codec, which decodes to choose
    each position's block count again (:func:`gqcodec.codec.load_for`)."""
    if fast:
        return card_for(header, what)
    from .codec import load_for

    return load_for(header, device, what)


def reduce(data: bytes, quality: int | None = None, fast: bool = False, max_bytes: int | None = None,
           max_bpp: float | None = None) -> bytes:
    """A smaller file of the image in .gqc bytes at a lower ``quality`` (or the best that fits in
    ``max_bytes`` / ``max_bpp``), with the model named in their header and without the original
    image (:meth:`ModelCard.reduce`; ``fast`` needs no torch)."""
    return reducer_for(bitstream.read_header(data), fast).reduce(data, quality, fast=fast, max_bytes=max_bytes,
                                                                  max_bpp=max_bpp)


def best_that_fits(qualities: list[int], make, limit: int) -> tuple[bytes | None, int | None]:
    """Bisect ``qualities`` (ascending; file sizes grow with quality) for the highest one whose file
    ``make(q)`` is at most ``limit`` bytes: ``(that file or None, the size of the lowest quality's
    file when it was made and did not fit)``. Only a file that was made and measured is returned."""
    lo, hi, best, smallest = 0, len(qualities) - 1, None, None
    while lo <= hi:
        mid = (lo + hi) // 2
        data = make(qualities[mid])
        if len(data) <= limit:
            best, lo = data, mid + 1
        else:
            hi = mid - 1
            if mid == 0:
                smallest = len(data)
    return best, smallest


def size_limit(max_bytes: int | None, max_bpp: float | None, width: int, height: int) -> tuple[int, str]:
    """``(bytes, description)`` of a file size limit given as ``max_bytes`` or as ``max_bpp`` of a
    ``width`` x ``height`` image (exactly one of the two)."""
    if (max_bytes is None) == (max_bpp is None):
        raise CodecError("give exactly one of max_bytes and max_bpp")
    if max_bpp is not None:
        if not (np.isfinite(max_bpp) and max_bpp > 0):
            raise CodecError(f"max_bpp must be a positive number, got {max_bpp}")
        limit = int(max_bpp * height * width // 8)
        return limit, f"{max_bpp:g} bpp ({limit} bytes)"
    if int(max_bytes) != max_bytes or max_bytes < 1:
        raise CodecError(f"max_bytes must be a positive integer, got {max_bytes}")
    return int(max_bytes), f"{int(max_bytes)} bytes"
