"""tools/tune_context_rdoq.py: one run on a tiny model with a fitted context model writes the scale,
and --inherit copies a parent's."""
import json

import pytest

from fakezoo import load_tool as _tool

tune = _tool("tune_context_rdoq")


def _ctx_model(tmp_path, monkeypatch):
    from fakezoo import add_context, install

    install(tmp_path / "w", monkeypatch, rdoq=1.0, ladder={"1": 1, "2": 2, "3": 3, "4": 3}, index_bits={"4": 10})
    add_context()


def test_run_writes_the_registry(tmp_path, monkeypatch, capsys):
    from fakezoo import half_flat_pack

    from gqcodec import codec, zoo

    _ctx_model(tmp_path, monkeypatch)
    assert tune.narrow_qualities(codec.Codec("tiny")) == [1, 2, 3]  # q4 searches a wider codebook
    data = half_flat_pack(tmp_path / "data", n=2, h=48)
    tune.main(["--model", "tiny", "--data", str(data), "--images", "2", "--scales", "1,4", "--write"])
    out = capsys.readouterr().out
    chosen = json.loads([line for line in out.splitlines() if line.startswith("{")][0])
    bd = chosen["bd_rate_percent_vs_histogram"]
    assert set(bd) == {"0", "1", "4"} and bd["0"] == pytest.approx(0, abs=1e-6)
    best = min(bd, key=bd.get)
    assert chosen["scale"] == (float(best) if bd[best] <= -0.1 else 0.0) and chosen["qualities"] == [1, 2, 3]
    e = json.loads((tmp_path / "w" / "registry.json").read_text())["models"]["tiny"]
    assert e["context_rdoq"] == chosen
    zoo._cache.clear()
    codec._codecs.clear()
    assert codec.Codec("tiny").context_rdoq_scale == chosen["scale"]
    zoo._cache.clear()
    codec._codecs.clear()


def test_choose_needs_a_real_gain():
    assert tune.choose({0.0: 0.0, 0.5: -1.2, 1.0: -0.8}, 0.1) == 0.5
    assert tune.choose({0.0: 0.0, 0.5: -0.05, 1.0: 0.3}, 0.1) == 0.0


def test_inherit_and_errors(tmp_path, monkeypatch):
    from fakezoo import install

    from gqcodec import zoo

    install(tmp_path / "w", monkeypatch)
    reg = zoo.read_registry()
    reg["models"]["tiny"]["context_rdoq"] = {"scale": 0.5, "images": "last 12"}
    reg["models"]["tiny-2"] = {k: v for k, v in reg["models"]["tiny"].items() if k != "context_rdoq"}
    zoo.save_registry(reg)
    tune.main(["--model", "tiny-2", "--inherit", "tiny", "--write"])
    e = json.loads((tmp_path / "w" / "registry.json").read_text())["models"]
    assert e["tiny-2"]["context_rdoq"] == {"scale": 0.5, "inherited_from": "tiny"}
    with pytest.raises(SystemExit, match="unknown model tiny-3"):
        tune.main(["--model", "tiny-2", "--inherit", "tiny-3"])
    del reg["models"]["tiny"]["context_rdoq"]
    zoo.save_registry(reg)
    with pytest.raises(SystemExit, match="no tuned context_rdoq"):
        tune.main(["--model", "tiny-2", "--inherit", "tiny"])
    with pytest.raises(SystemExit, match="no block-0 context model"):
        tune.main(["--model", "tiny", "--images", "1"])  # the plain tiny prior has none
    zoo._cache.clear()
