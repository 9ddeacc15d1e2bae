"""tools/tune_adaptive.py: the slope rule, the estimates and the factor choice; one run on a tiny model."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

spec = importlib.util.spec_from_file_location("tune_adaptive",
                                              Path(__file__).parent.parent / "tools" / "tune_adaptive.py")
tune = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tune)


def test_slope_and_dense_point():
    se = np.array([[[400.0]], [[100.0]], [[40.0]]])       # one position, counts 0..2
    bits = np.array([[[0.0]], [[10.0]], [[30.0]]])
    assert tune.slope([(se, bits)], 1, 2) == pytest.approx(60.0 / 20.0)
    assert tune.slope([(se, bits)], 0, 2) == pytest.approx(360.0 / 30.0)
    bpp, psnr = tune.point([(se, bits)], None)
    assert bpp == pytest.approx(30.0 / 256)
    assert psnr == pytest.approx(10 * np.log10(255.0**2 / (40.0 / (3 * 256))))


def test_adaptive_point_counts_the_map():
    se = np.array([[[400.0]], [[100.0]], [[40.0]]])
    bits = np.array([[[0.0]], [[10.0]], [[30.0]]])
    bpp, psnr = tune.point([(se, bits)], 1e9)     # rate is everything: no block kept
    assert psnr == pytest.approx(10 * np.log10(255.0**2 / (400.0 / (3 * 256))))
    assert bpp * 256 == pytest.approx(np.log2(3))  # the one count, coded with a fresh v5 table (3 values, all ones)


def test_factor_choices():
    assert tune.choose_factor({0.25: -7.9, 0.5: -10.0, 1.0: -10.4, 2.0: -8.5}, 0.5) == 0.5
    assert tune.choose_factor({0.25: -7.9, 0.5: -10.0, 1.0: -10.4, 2.0: -8.5}, 0.0) == 1.0
    ladders = {0.25: {8: (0.79, 28.33)}, 0.5: {8: (0.74, 28.24)}, 1.0: {8: (0.65, 27.94)}}
    assert tune.choose_top_factor(ladders, (0.88, 28.16), 8, 1.0) == 0.5
    assert tune.choose_top_factor(ladders, (0.88, 29.0), 8, 1.0) == 1.0  # none keeps the PSNR: fallback


def test_run_on_a_tiny_model_writes_the_registry(tmp_path, monkeypatch, capsys):
    from fakezoo import half_flat_pack, install

    from gqcodec import codec, zoo

    install(tmp_path / "w", monkeypatch)
    data = half_flat_pack(tmp_path / "data")
    tune.main(["--model", "tiny", "--data", str(data), "--images", "2", "--factors", "0.5,1", "--write"])
    out = capsys.readouterr().out
    chosen = json.loads([line for line in out.splitlines() if line.startswith("{")][0])
    e = json.loads((tmp_path / "w" / "registry.json").read_text())["models"]["tiny"]
    assert set(e["adaptive_lambda"]) == {"1", "2", "3"}
    assert e["adaptive_lambda"] == {str(q): v for q, v in chosen["adaptive_lambda"].items()}
    assert all(v >= 0 for v in e["adaptive_lambda"].values())
    assert e["adaptive_selection"]["factor"] in (0.5, 1.0)
    zoo._cache.clear()
    codec._codecs.clear()
