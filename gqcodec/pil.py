"""Pillow plugin for .gqc files.

``import gqcodec.pil`` registers the format (or call ``gqcodec.pil.register()``):

    >>> from PIL import Image
    >>> import gqcodec.pil
    >>> im = Image.open("photo.gqc")      # size and mode from the header only, no torch
    >>> im.load()                          # decodes with the shipped model
    >>> im.save("copy.gqc", quality=3)    # encodes (options: quality, mode="raw"|"range", rdoq,
    ...                                    #  adaptive=True|False, refine, model)
"""
from __future__ import annotations

from PIL import Image, ImageFile

import bitstream

FORMAT = "GQC"


def _accept(prefix: bytes) -> bool:
    return prefix[: len(bitstream.MAGIC)] == bitstream.MAGIC


class GqcImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "gqcodec Gaussian-Quant neural image"

    def _open(self):
        head = self.fp.read(bitstream.HEADER_SIZE)
        try:
            header = bitstream.read_header(head)
        except bitstream.FormatError as e:
            raise SyntaxError(f"not a valid .gqc file: {e}") from None
        self.gqc_header = header
        self._mode = header.color
        self._size = (header.width, header.height)
        self.info["gqc"] = header.to_dict()
        if header.metadata_length:  # v4: EXIF / XMP after the payload
            from bitstream.metadata import decode_metadata

            start = self.fp.tell()
            self.fp.seek(start + header.payload_length)
            try:
                self.info.update(decode_metadata(self.fp.read(header.metadata_length)))
            except bitstream.FormatError as e:
                raise SyntaxError(f"not a valid .gqc file: {e}") from None
            self.fp.seek(start)
        self.tile = [ImageFile._Tile("gqc", (0, 0) + self.size, 0, None)]

    def load_seek(self, pos):  # pragma: no cover - Pillow API hook
        self.fp.seek(pos)


class GqcDecoder(ImageFile.PyDecoder):
    _pulls_fd = True

    def decode(self, buffer):
        from . import codec

        self.fd.seek(0)
        data = self.fd.read()
        try:
            img = codec.decompress(data)
        except (bitstream.FormatError, codec.CodecError) as e:
            raise OSError(f"cannot decode .gqc: {e}") from None
        self.set_as_raw(img.tobytes())
        return -1, 0


def _save(im: Image.Image, fp, filename):
    from . import codec

    info = im.encoderinfo
    data = codec.load(info.get("model")).compress(im, quality=info.get("quality"), mode=info.get("mode", "range"),
                                                  rdoq=info.get("rdoq"), adaptive=info.get("adaptive"),
                                                  max_bytes=info.get("max_bytes"), max_bpp=info.get("max_bpp"),
                                                  keep_metadata=info.get("keep_metadata", True),
                                                  refine=info.get("refine"))
    fp.write(data)


_registered = False


def register() -> None:
    global _registered
    if _registered:
        return
    Image.register_open(FORMAT, GqcImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, ".gqc")
    Image.register_mime(FORMAT, "image/x-gqc")
    Image.register_decoder("gqc", GqcDecoder)
    _registered = True


register()
