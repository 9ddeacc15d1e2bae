"""tools/fit_context.py: block 0's context model fitted to a model's files, stored in its prior;
the model's files become format v6, decode to the same image and are smaller where neighbours
repeat each other."""
import json

import numpy as np
from PIL import Image

import bitstream
from fakezoo import load_tool as _tool


fit = _tool("fit_context")


def test_fit_writes_a_context_prior_and_files_become_v6(tmp_path, monkeypatch, capsys):
    from fakezoo import half_flat_pack, install

    from gqcodec import codec, zoo

    install(tmp_path / "w", monkeypatch, rdoq=1.0)
    data = half_flat_pack(tmp_path / "pack", n=10, h=128, w=128)
    img = Image.open(data / "9.png")
    before = codec.Codec("tiny").compress(img, quality=3)
    fit.main(["--model", "tiny", "--data", str(data), "--images", "10", "--offset", "0", "--qualities", "2,3",
              "--write"])
    out = json.loads(capsys.readouterr().out)
    best = out["bits_per_index_ctx"][str(out["tau"])]
    assert best < out["bits_per_index_hist"]
    zoo._cache.clear()
    codec._codecs.clear()
    c = codec.Codec("tiny")
    assert c.prior.context is not None and c.prior.prior_id != bitstream.read_header(before).prior_id
    after = c.compress(img, quality=3)
    h = bitstream.read_header(after)
    assert h.version == 6
    _, idx6 = bitstream.unpack(after, c.prior)
    # the same indices coded without the context model: the same image from a file that is not smaller
    plain = bitstream.pack(h, idx6, c.prior, spatial=False)
    assert bitstream.read_header(plain).version in (1, 5) and len(after) <= len(plain)
    assert np.array_equal(np.asarray(c.decompress(after)), np.asarray(c.decompress(plain)))
    entry = zoo.read_registry()["models"]["tiny"]
    assert entry["prior_stats"]["history"][-1]["block0_context"]["tau"] == out["tau"]
    # a second fit refuses: the prior has its model already
    try:
        fit.main(["--model", "tiny", "--data", str(data), "--images", "10", "--offset", "0"])
    except SystemExit as e:
        assert "already" in str(e)
    else:
        raise AssertionError("fit_context fitted twice")
