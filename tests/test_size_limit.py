"""Compressing to a size limit (max_bytes / max_bpp): the best quality whose file fits."""
import io

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import bitstream
import gqcodec
from gqcodec import codec
from gqcodec.cli import main


def image():
    yy, xx = np.mgrid[:48, :64]
    return np.stack([xx * 3, yy * 4, (xx + yy) * 2], -1).astype(np.uint8)


def sizes(c):
    return {q: c.compress(image(), quality=q) for q in c.qualities}


def test_best_fitting_quality_is_chosen(tiny):
    c = codec.load()
    files = sizes(c)
    lens = [len(files[q]) for q in c.qualities]
    assert lens == sorted(lens) and len(set(lens)) == len(lens), lens  # the fake model's sizes grow strictly
    for q in c.qualities:
        # exactly the size of quality q, or one byte short of the next one: quality q's own file
        for limit in {len(files[q]), (len(files[q + 1]) - 1) if q + 1 in files else 10**6}:
            data = c.compress(image(), max_bytes=limit)
            assert bitstream.read_header(data).quality == q and data == files[q] and len(data) <= limit
    q2 = c.qualities[1]
    bpp = len(files[q2]) * 8 / (48 * 64)
    assert bitstream.read_header(gqcodec.compress(image(), max_bpp=bpp + 1e-9)).quality == q2
    assert bitstream.read_header(gqcodec.compress(image(), max_bpp=bpp - 0.01)).quality == c.qualities[0]


def test_impossible_and_contradictory_limits_are_clear_errors(tiny):
    c = codec.load()
    smallest = len(c.compress(image(), quality=c.qualities[0]))
    with pytest.raises(codec.CodecError, match=f"does not fit in {smallest - 1} bytes.*needs {smallest} bytes"):
        c.compress(image(), max_bytes=smallest - 1)
    with pytest.raises(codec.CodecError, match="not both"):
        c.compress(image(), quality=2, max_bytes=10**6)
    with pytest.raises(codec.CodecError, match="exactly one"):
        c.compress_to_size(image(), max_bytes=10**6, max_bpp=1.0)
    with pytest.raises(codec.CodecError, match="positive"):
        c.compress(image(), max_bytes=0)
    with pytest.raises(codec.CodecError, match="positive"):
        c.compress(image(), max_bpp=float("nan"))


def test_cli_and_pillow_plugin_size_limits(tiny, tmp_path):
    files = sizes(codec.load())
    q2 = sorted(files)[1]
    src = tmp_path / "in.png"
    Image.fromarray(image()).save(src)
    out = tmp_path / "out.gqc"
    res = CliRunner().invoke(main, ["compress", str(src), str(out), "--max-bytes", str(len(files[q2]))])
    assert res.exit_code == 0, res.output
    assert out.read_bytes() == files[q2] and f"quality {q2}" in res.output
    for args, words in ((["--max-bytes", "20"], "does not fit"), (["--max-bytes", "999", "-q", "2"], "not both"),
                        (["--max-bytes", "999", "--max-bpp", "1"], "not both")):
        dst = tmp_path / "never.gqc"
        res = CliRunner().invoke(main, ["compress", str(src), str(dst), *args])
        lines = [line for line in res.output.strip().splitlines() if line]
        assert res.exit_code != 0 and len(lines) == 1 and words in lines[0] and "Traceback" not in res.output, res.output
        assert not dst.exists()
    res = CliRunner().invoke(main, ["compress", str(src), str(tmp_path / "never.gqc"), "--max-bpp", "0"])
    assert res.exit_code == 2 and "Invalid value for '--max-bpp'" in res.output  # click's usage error
    import gqcodec.pil  # noqa: F401  (registers the format)

    buf = io.BytesIO()
    Image.fromarray(image()).save(buf, format="GQC", max_bytes=len(files[q2]))
    assert buf.getvalue() == files[q2]
