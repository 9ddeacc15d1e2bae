"""tools/tune_refine.py: which qualities it tunes, and one run on a tiny model that writes the registry."""
import importlib.util
import json
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("tune_refine", Path(__file__).parent.parent / "tools" / "tune_refine.py")
tune = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tune)


def test_run_on_a_tiny_model_writes_the_registry(tmp_path, monkeypatch, capsys):
    from fakezoo import half_flat_pack, install

    from gqcodec import codec, zoo

    install(tmp_path / "w", monkeypatch, ladder={"1": 1, "2": 2, "3": 3, "4": 3}, rdoq=1.0, index_bits={"4": 10},
            adaptive_lambda={"1": 40.0, "2": 40.0, "3": 40.0, "4": 40.0})
    assert tune.refinable(codec.Codec("tiny")) == [1, 2, 3]   # q4 searches a wider codebook
    data = half_flat_pack(tmp_path / "data", h=48)
    for default in (0, 2):
        tune.main(["--model", "tiny", "--data", str(data), "--images", "2", "--alphas", "10,20", "--threads", "1",
                   "--default-iters", str(default), "--write"])
        out = capsys.readouterr().out
        chosen = json.loads([line for line in out.splitlines() if line.startswith("{")][0])
        assert chosen["alpha"] in (10.0, 20.0) and chosen["qualities"] == [1, 2, 3]
        assert set(chosen["bd_rate_percent_by_alpha"]) == {"10", "20"}
        assert chosen["iters"] == (default if chosen["bd_rate_percent_vs_off"] < 0 else 0)
        e = json.loads((tmp_path / "w" / "registry.json").read_text())["models"]["tiny"]
        assert e["refine"] == chosen
        assert codec.Codec("tiny").refine_settings(1) == (chosen["iters"], 8, chosen["alpha"])
    zoo._cache.clear()
    codec._codecs.clear()


def test_inherit_copies_the_parents_setting(tmp_path, monkeypatch):
    from fakezoo import install

    from gqcodec import zoo

    install(tmp_path / "w", monkeypatch)
    reg = zoo.read_registry()
    reg["models"]["tiny"]["refine"] = {"iters": 0, "top": 8, "alpha": 1400.0}
    reg["models"]["tiny-2"] = {k: v for k, v in reg["models"]["tiny"].items() if k != "refine"}
    zoo.save_registry(reg)
    tune.main(["--model", "tiny-2", "--inherit", "tiny", "--write"])
    e = json.loads((tmp_path / "w" / "registry.json").read_text())["models"]
    assert e["tiny-2"]["refine"] == {"iters": 0, "top": 8, "alpha": 1400.0, "inherited_from": "tiny"}
    assert e["tiny"]["refine"] == {"iters": 0, "top": 8, "alpha": 1400.0}
    with pytest.raises(SystemExit, match="unknown model tiny-3"):
        tune.main(["--model", "tiny-2", "--inherit", "tiny-3"])
    reg = zoo.read_registry()
    del reg["models"]["tiny"]["refine"]
    zoo.save_registry(reg)
    with pytest.raises(SystemExit, match="no tuned refinement"):
        tune.main(["--model", "tiny-2", "--inherit", "tiny"])
    zoo._cache.clear()
