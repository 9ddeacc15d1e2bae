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
