"""Smoke run of tools/bench.py (--quick) on the tiny test model and a synthetic image."""
import importlib.util
import io
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "tools" / "bench.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("gq_bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_help_exits_cleanly(capsys):
    bench = load_bench()
    with pytest.raises(SystemExit) as e:
        bench.parse_args(["--help"])
    assert e.value.code == 0
    assert "--quick" in capsys.readouterr().out


def test_quick_run_prints_every_table(tiny):
    bench = load_bench()
    out = io.StringIO()
    res = bench.main(["--quick", "--threads", "1", "--synthetic", "48x64"], out=out)
    text = out.getvalue()
    for title in ("Search on cpu", "Agreement", "Tile shapes", "End to end on cpu", "Stages of our codec"):
        assert title in text
    search = res["sections"]["search-cpu"]["results"]
    assert search and all(r["agree_ref"] >= 0.9999 for r in search)
    assert all(r["agree_exact64"]["ours"] == 1.0 for r in search)
    stages = res["sections"]["stages-cpu"]["qualities"]
    assert all(v["same_bytes_as_codec"] and v["same_image_as_codec"] for v in stages.values())
    e2e = res["sections"]["e2e-cpu"]["summary"]
    assert any(k.startswith("ours") for k in e2e)
    assert all(v["total_best_ms"] > 0 for v in e2e.values())


def test_reference_and_v0_agree_with_quantizer():
    import torch

    from gqcodec.quantizer import GaussianQuantizer

    bench = load_bench()
    q = GaussianQuantizer(8, 2**9, seed=1)
    mu, lv = bench.make_inputs(100, 8, seed=3)
    ours = q.quantize(mu, lv)
    assert torch.equal(ours, bench.exact_scores(mu, lv, q.codebook).argmax(1))
    assert (bench.reference_quantize(mu, lv, q.codebook, chunk=7) == ours).double().mean() >= 0.99
    assert (bench.v0_quantize(q, mu, lv) == ours).double().mean() >= 0.99
