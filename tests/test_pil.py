import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import bitstream
from gqcodec import codec, zoo

def test_save_open_load_round_trip(tiny, tmp_path):
    import gqcodec.pil  # noqa: F401  registers the plugin

    rng = np.random.default_rng(0)
    src = Image.fromarray(rng.integers(0, 256, (21, 34, 3), dtype=np.uint8))
    p = tmp_path / "x.gqc"
    src.save(p, quality=1)
    assert bitstream.read_header(p.read_bytes()).quality == 1
    im = Image.open(p)
    assert im.format == "GQC" and im.size == (34, 21) and im.mode == "RGB"
    im.load()
    assert np.asarray(im).shape == (21, 34, 3)
    assert np.array_equal(np.asarray(im), np.asarray(codec.decompress(p.read_bytes())))
    gray = Image.fromarray(rng.integers(0, 256, (9, 9), dtype=np.uint8), "L")
    gray.save(tmp_path / "g.gqc", mode="raw")
    g = Image.open(tmp_path / "g.gqc")
    assert g.mode == "L" and g.info["gqc"]["coding"] == "raw"
    assert g.convert("RGB").size == (9, 9)


def test_open_reads_header_only_without_torch(tiny, tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "x.gqc"
    p.write_bytes(codec.compress(Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))))
    code = ("import sys; import gqcodec.pil; from PIL import Image; im = Image.open(sys.argv[1]);"
            "print(im.size, im.mode, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(30, 20) RGB False"


def test_truncated_file_is_rejected(tiny, tmp_path):
    import gqcodec.pil  # noqa: F401

    rng = np.random.default_rng(0)
    data = codec.compress(Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)))
    for cut in range(0, bitstream.HEADER_SIZE, 7):
        p = tmp_path / f"t{cut}.gqc"
        p.write_bytes(data[:cut])
        with pytest.raises(Exception) as ei:
            Image.open(p)
        assert ei.type.__name__ in ("UnidentifiedImageError",)
    p = tmp_path / "body.gqc"
    p.write_bytes(data[:-2])
    im = Image.open(p)  # header is intact
    with pytest.raises(OSError, match="truncated|length"):
        im.load()


def test_save_options_rdoq_and_adaptive(tmp_path, monkeypatch):
    """Pillow's save() passes rdoq and adaptive through; adaptive (v2) files open like any other."""
    import gqcodec.pil  # noqa: F401
    from fakezoo import install

    install(tmp_path / "w", monkeypatch, adaptive_lambda={"2": 1e9})  # rate is everything: every block skipped
    a = np.full((48, 64, 3), 120, dtype=np.uint8)
    a[:, 32:] = np.random.default_rng(1).integers(0, 256, (48, 32, 3), dtype=np.uint8)
    src = Image.fromarray(a)
    src.save(tmp_path / "a.gqc", quality=2)
    src.save(tmp_path / "d.gqc", quality=2, adaptive=False, rdoq=0)
    assert (tmp_path / "a.gqc").read_bytes()[4] == 5 and (tmp_path / "d.gqc").read_bytes()[4] == 1
    assert (tmp_path / "d.gqc").read_bytes() == codec.load("tiny").compress(src, quality=2, adaptive=False, rdoq=0)
    im = Image.open(tmp_path / "a.gqc")
    im.load()
    assert im.size == (64, 48) and np.array_equal(np.asarray(im), np.asarray(codec.decompress((tmp_path / "a.gqc").read_bytes())))
    zoo._cache.clear()
    codec._codecs.clear()
