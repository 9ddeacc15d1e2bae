"""EXIF and XMP survive compress -> .gqc (format v4) -> decompress, unless stripped."""
import io

import numpy as np
from click.testing import CliRunner
from PIL import Image

import bitstream
import gqcodec
from gqcodec import codec
from gqcodec.cli import main

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>creator: a photographer</rdf:RDF></x:xmpmeta>'


def photo(orientation=6) -> bytes:
    """A 40x24 JPEG with EXIF (camera, date, orientation) and XMP."""
    rng = np.random.default_rng(0)
    exif = Image.Exif()
    exif[0x010F] = "GQ Camera Co"
    exif[0x0132] = "2026:12:01 10:00:00"
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)).save(buf, "JPEG", exif=exif.tobytes(), xmp=XMP)
    return buf.getvalue()


def test_metadata_is_kept_and_orientation_applied(tiny):
    data = gqcodec.compress(photo(), quality=2)
    h = bitstream.read_header(data)
    assert h.version == 4 and (h.width, h.height) == (24, 40)  # rotated upright
    meta = bitstream.read_metadata(data)
    assert set(meta) == {"exif", "xmp"} and meta["xmp"] == XMP
    img = gqcodec.decompress(data)
    exif = Image.Exif()
    exif.load(img.info["exif"])
    assert exif[0x010F] == "GQ Camera Co" and exif[0x0132] == "2026:12:01 10:00:00"
    assert 0x0112 not in exif  # the pixels are upright now; a viewer must not rotate them again
    assert img.info["xmp"] == XMP
    # stripped: the plain file, same pixels
    bare = gqcodec.compress(photo(), quality=2, keep_metadata=False)
    assert bitstream.read_header(bare).version in (1, 2) and bitstream.read_metadata(bare) == {}
    assert bare[bitstream.HEADER_SIZE:] == data[bitstream.HEADER_SIZE:bitstream.HEADER_SIZE + h.payload_length]
    assert np.array_equal(np.asarray(gqcodec.decompress(bare)), np.asarray(img))
    # the size limit counts the metadata: the file fits, metadata included
    limited = codec.load().compress(photo(), max_bytes=len(data))
    assert len(limited) <= len(data) and "exif" in bitstream.read_metadata(limited)


def test_cli_writes_metadata_into_the_decoded_image(tiny, tmp_path):
    src = tmp_path / "photo.jpg"
    src.write_bytes(photo())
    gqc = tmp_path / "photo.gqc"
    res = CliRunner().invoke(main, ["compress", str(src), str(gqc), "-q", "2"])
    assert res.exit_code == 0 and "bytes of metadata" in res.output, res.output
    res = CliRunner().invoke(main, ["info", str(gqc)])
    assert res.exit_code == 0 and "metadata" in res.output and "exif" in res.output, res.output
    for ext in ("png", "jpg", "webp"):
        out = tmp_path / f"out.{ext}"
        res = CliRunner().invoke(main, ["decompress", str(gqc), str(out)])
        assert res.exit_code == 0, res.output
        back = Image.open(out)
        assert back.getexif()[0x010F] == "GQ Camera Co", ext
        xmp = back.info.get("xmp") or back.info.get("XML:com.adobe.xmp")
        assert xmp and (xmp.encode() if isinstance(xmp, str) else xmp) == XMP, ext
    stripped = tmp_path / "stripped.gqc"
    res = CliRunner().invoke(main, ["compress", str(src), str(stripped), "-q", "2", "--strip-metadata"])
    assert res.exit_code == 0 and "bytes of metadata" not in res.output
    assert bitstream.read_header(stripped.read_bytes()).metadata_length == 0


def test_pillow_plugin_reads_and_writes_metadata(tiny, tmp_path):
    import gqcodec.pil  # noqa: F401

    im = Image.open(io.BytesIO(photo(orientation=1)))
    out = tmp_path / "p.gqc"
    im.save(out, quality=2)
    back = Image.open(out)
    assert back.info["xmp"] == XMP and back.getexif()[0x010F] == "GQ Camera Co"
    back.load()
    assert back.size == (40, 24)
    im.save(tmp_path / "s.gqc", quality=2, keep_metadata=False)
    assert "exif" not in Image.open(tmp_path / "s.gqc").info


def test_a_tiff_inputs_own_layout_tags_are_not_kept(tiny):
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "GQ Camera Co"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(buf, "TIFF", exif=exif.tobytes())
    assert 273 in Image.open(io.BytesIO(buf.getvalue())).getexif()  # TIFF strip offsets show up as EXIF
    kept = Image.Exif()
    kept.load(bitstream.read_metadata(gqcodec.compress(buf.getvalue(), quality=1))["exif"])
    assert kept[0x010F] == "GQ Camera Co" and not {256, 257, 273, 279} & set(kept)
