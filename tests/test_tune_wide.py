"""tools/tune_wide.py: measures wide-codebook settings with real files and writes the chosen ones."""
import importlib.util
import json
from pathlib import Path

from gqcodec import codec, zoo

spec = importlib.util.spec_from_file_location("tune_wide", Path(__file__).parent.parent / "tools" / "tune_wide.py")
tune = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tune)


def test_parse_setting():
    assert tune.parse_setting("18,1.5,300") == (18, 1.5, 300.0)


def test_run_and_write_on_a_tiny_model(tmp_path, monkeypatch, noise_pack, capsys):
    from fakezoo import install

    install(tmp_path / "w", monkeypatch, adaptive_lambda={"1": 50.0, "2": 50.0, "3": 50.0})
    tune.main(["--model", "tiny", "--data", str(noise_pack), "--first", "0", "--count", "2",
               "--candidates", "10,0,50", "--write", "4=9,0.5,20", "--threads", "1"])
    out = capsys.readouterr().out
    assert "K=2^10 rdoq 0 lambda 50" in out and "(quality 3, narrow)" in out
    e = json.loads((tmp_path / "w" / "registry.json").read_text())["models"]["tiny"]
    assert e["ladder"]["4"] == 3 and e["index_bits"]["4"] == 9
    assert e["rdoq_by_quality"]["4"] == 0.5 and e["adaptive_lambda"]["4"] == 20.0
    assert 0 < e["escape_share"]["4"] < 1
    run = e["wide_selection"]["runs"]["9,0.5,20"]
    assert run["bpp"] > 0 and run["psnr"] > 0
    # the written quality is a working codec quality: a v3 file that decodes
    zoo._cache.clear()
    codec._codecs.clear()
    c = codec.Codec("tiny")
    import numpy as np

    import bitstream

    img = np.random.default_rng(1).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    data = c.compress(img, quality=4)
    assert bitstream.read_header(data).K_bits == 9
    assert np.asarray(c.decompress(data)).shape == img.shape
    zoo._cache.clear()
    codec._codecs.clear()
