import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gqcodec import rd
from gqcodec.cli_eval import bd_cmd, plot_cmd

ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "anchors"
METHODS = ("cubic", "pchip")

RATES = np.array([0.12, 0.19, 0.29, 0.44, 0.65, 0.97, 1.35])


def _psnr(rate):
    lr = np.log(rate)
    return 35.5 + 5.8 * lr - 0.25 * lr ** 2  # concave, increasing over the rates used


def _results(name="test", rates=RATES, psnr=None, ms=None):
    psnr = _psnr(rates) if psnr is None else psnr
    res = {"bpp": [float(r) for r in rates], "psnr-rgb": [float(p) for p in psnr]}
    res["ms-ssim-rgb"] = [float(m) for m in (ms if ms is not None else 1 - 10 ** (-np.asarray(psnr) / 25))]
    res["encoding_time"] = [0.01] * len(rates)
    res["decoding_time"] = [0.02] * len(rates)
    res["quality"] = list(range(1, len(rates) + 1))
    return {"name": name, "description": "synthetic", "results": res}


# -- Bjøntegaard ---------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_bd_rate_ten_percent_fewer_bits(method):
    p = _psnr(RATES)
    assert rd.bd_rate(RATES, p, 0.9 * RATES, p, method=method) == pytest.approx(-10.0, abs=1e-9)
    assert rd.bd_rate(0.9 * RATES, p, RATES, p, method=method) == pytest.approx(100 / 9, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_bd_identical_curves_give_zero(method):
    p = _psnr(RATES)
    assert rd.bd_rate(RATES, p, RATES, p, method=method) == pytest.approx(0.0, abs=1e-10)
    assert rd.bd_psnr(RATES, p, RATES, p, method=method) == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_bd_psnr_one_db_shift(method):
    p = _psnr(RATES)
    assert rd.bd_psnr(RATES, p, RATES, p + 1.0, method=method) == pytest.approx(1.0, abs=1e-10)
    assert rd.bd_psnr(RATES, p + 1.0, RATES, p, method=method) == pytest.approx(-1.0, abs=1e-10)


def test_bd_rate_cubic_exact_for_cubic_curves_sampled_differently():
    # log-rate an exact cubic of PSNR: the cubic fit recovers it from any 4+ samples
    def lograte(q):
        return -7.0 + 0.21 * q + 0.001 * (q - 30) ** 2 + 0.0001 * (q - 30) ** 3

    q1 = np.array([26.0, 28.5, 31.0, 33.0, 36.0, 39.0])
    q2 = np.array([27.0, 29.0, 32.5, 35.0, 37.5])
    r1 = np.exp(lograte(q1))
    r2 = 0.8 * np.exp(lograte(q2))
    assert rd.bd_rate(r1, q1, r2, q2, method="cubic") == pytest.approx(-20.0, abs=1e-8)
    assert rd.bd_rate(r1, q1, r2, q2, method="pchip") == pytest.approx(-20.0, abs=0.3)


def test_bd_point_order_does_not_matter():
    p = _psnr(RATES)
    perm = np.array([3, 0, 6, 1, 5, 2, 4])
    for m in METHODS:
        assert rd.bd_rate(RATES[perm], p[perm], 0.9 * RATES, p, method=m) == pytest.approx(-10.0, abs=1e-9)


def test_bd_needs_enough_points():
    r, p = RATES[:3], _psnr(RATES[:3])
    with pytest.raises(rd.BDError, match="at least 4 points.*pchip"):
        rd.bd_rate(r, p, r * 0.9, p, method="cubic")
    assert rd.bd_rate(r, p, r * 0.9, p, method="pchip") == pytest.approx(-10.0, abs=1e-9)
    with pytest.raises(rd.BDError, match="at least 2"):
        rd.bd_psnr(r[:1], p[:1], r, p, method="pchip")


def test_bd_no_overlap_is_a_clear_error():
    p = _psnr(RATES)
    with pytest.raises(rd.BDError, match="do not overlap in quality"):
        rd.bd_rate(RATES, p, RATES, p + 20, method="cubic")
    with pytest.raises(rd.BDError, match="do not overlap in rate"):
        rd.bd_psnr(RATES, p, RATES * 100, p, method="pchip")


def test_bd_bad_inputs():
    p = _psnr(RATES)
    with pytest.raises(rd.BDError, match="duplicate"):
        rd.bd_rate(RATES, np.r_[p[:-1], p[-2]], RATES, p)
    with pytest.raises(rd.BDError, match="positive"):
        rd.bd_rate(-RATES, p, RATES, p)
    with pytest.raises(ValueError, match="method"):
        rd.bd_rate(RATES, p, RATES, p, method="linear")


def test_bd_report_both_methods_and_metrics():
    ref = _results("ref")
    test = _results("test", rates=0.9 * RATES, psnr=_psnr(RATES))
    rep = rd.bd_report(ref, test)
    for m in METHODS:
        assert rep[m]["error"] is None
        assert rep[m]["bd_rate"] == pytest.approx(-10.0, abs=1e-9)
        assert rep[m]["bd_psnr"] > 0
    rep = rd.bd_report(ref, test, metric="ms-ssim-db")
    assert rep["cubic"]["bd_rate"] == pytest.approx(-10.0, abs=1e-9)


@pytest.mark.skipif(not ANCHORS.is_dir(), reason="../shared/anchors not present")
def test_bd_hyperprior_vs_factorized_anchor():
    a = ANCHORS / "compressai-kodak"
    ref = rd.load(a / "compressai-bmshj2018-factorized_mse_cuda.json")
    test = rd.load(a / "compressai-bmshj2018-hyperprior_mse_cuda.json")
    rep = rd.bd_report(ref, test)
    assert rep["cubic"]["bd_rate"] == pytest.approx(-21.15, abs=0.1)
    assert rep["pchip"]["bd_rate"] == pytest.approx(-21.1, abs=0.3)


# -- JSON schema -------------------------------------------------------------------


def test_json_round_trip(tmp_path):
    data = _results("round-trip")
    p = tmp_path / "r.json"
    rd.save(data, p)
    back = rd.load(p)
    assert back == data
    assert json.loads(p.read_text()) == data
    bpp, q = rd.curve(back, "psnr")
    assert np.all(np.diff(bpp) > 0) and q.shape == bpp.shape


def _bad(mutate):
    d = _results()
    mutate(d)
    return d


@pytest.mark.parametrize("data,match", [
    ([1, 2], "JSON object"),
    (_bad(lambda d: d.pop("name")), "'name'"),
    (_bad(lambda d: d.update(description=3)), "'description'"),
    (_bad(lambda d: d.pop("results")), "'results'"),
    (_bad(lambda d: d["results"]["psnr-rgb"].pop()), "differ in length"),
    (_bad(lambda d: d["results"].pop("bpp")), "no 'bpp'"),
    (_bad(lambda d: [d["results"].pop(k) for k in ("psnr-rgb", "ms-ssim-rgb")]), "needs one of"),
    (_bad(lambda d: d["results"]["bpp"].__setitem__(0, -0.1)), "positive"),
    (_bad(lambda d: d["results"]["psnr-rgb"].__setitem__(2, float("nan"))), "finite"),
    (_bad(lambda d: d["results"]["psnr-rgb"].__setitem__(2, "30")), "finite number"),
    (_bad(lambda d: d["results"]["psnr-rgb"].__setitem__(2, True)), "finite number"),
    (_bad(lambda d: d["results"]["ms-ssim-rgb"].__setitem__(0, 1.5)), r"\[0, 1\]"),
    (_bad(lambda d: d["results"].update(bpp=5)), "must be a list"),
    (_bad(lambda d: d["results"]["encoding_time"].__setitem__(0, -1.0)), "negative"),
])
def test_validation_errors(data, match):
    with pytest.raises(rd.RDSchemaError, match=match):
        rd.validate(data)


def test_load_errors(tmp_path):
    with pytest.raises(rd.RDError, match="no such file"):
        rd.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "results": {')
    with pytest.raises(rd.RDSchemaError, match="not valid JSON"):
        rd.load(bad)
    nan = tmp_path / "nan.json"
    nan.write_text('{"name": "x", "results": {"bpp": [NaN], "psnr-rgb": [30]}}')
    with pytest.raises(rd.RDSchemaError, match="finite"):
        rd.load(nan)
    with pytest.raises(rd.RDSchemaError):
        rd.save({"name": "x"}, tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()


@pytest.mark.skipif(not ANCHORS.is_dir(), reason="../shared/anchors not present")
def test_all_anchor_files_validate():
    files = [p for p in ANCHORS.rglob("*.json") if "per-image" not in p.parts]
    assert files
    for p in files:
        rd.load(p)


# -- plot ----------------------------------------------------------------------------


def test_plot_writes_png_and_svg(tmp_path):
    ours = [("ours", _results("ours")), ("ours-b", _results("ours-b", rates=0.95 * RATES))]
    anchors = []
    anchor = ANCHORS / "compressai-kodak" / "compressai-bmshj2018-factorized_mse_cuda.json"
    if anchor.is_file():
        anchors = rd.load_anchor_set(str(anchor))
        assert anchors and anchors[0][0] == "bmshj2018-factorized"
    # a paper-style curve with only bpp + psnr is left out of the MS-SSIM panel
    anchors.append(("psnr-only", {"name": "p", "results": {"bpp": [0.2, 0.5], "psnr-rgb": [29.0, 32.0]}}))
    png, svg = rd.plot_rd(ours, anchors, tmp_path / "rd.png")
    assert png == tmp_path / "rd.png" and svg == tmp_path / "rd.svg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "</svg>" in text and len(text) > 10_000
    assert not list(tmp_path.glob(".*part"))


def test_default_anchor_subset():
    found = rd.default_anchors(ANCHORS)
    if not ANCHORS.is_dir():
        assert found == []
        return
    labels = [lab for lab, _ in found]
    assert "bmshj2018-factorized (MSE)" in labels and "WebP" in labels and "VTM" in labels
    assert all(p.is_file() for _, p in found)
    assert rd.load_anchor_set("none") == []


# -- CLI -----------------------------------------------------------------------------


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return str(p)


def test_bd_cli(tmp_path):
    ref = _write(tmp_path, "ref.json", _results("ref"))
    test = _write(tmp_path, "test.json", _results("test", rates=0.9 * RATES, psnr=_psnr(RATES)))
    r = CliRunner().invoke(bd_cmd, [ref, test])
    assert r.exit_code == 0, r.output
    assert r.output.count("-10.00 %") == 2 and "cubic (default)" in r.output and "pchip" in r.output
    r = CliRunner().invoke(bd_cmd, [ref, test, "--json"])
    assert json.loads(r.output)["pchip"]["bd_rate"] == pytest.approx(-10.0, abs=1e-9)
    # 3 points: cubic not applicable, pchip still printed
    short = _results("short", rates=RATES[:3])
    s = _write(tmp_path, "short.json", short)
    r = CliRunner().invoke(bd_cmd, [s, s])
    assert r.exit_code == 0 and "n/a" in r.output and "+0.00 %" in r.output


@pytest.mark.parametrize("kind", ["missing", "badjson", "schema", "nooverlap"])
def test_bd_cli_errors_are_one_line(tmp_path, kind):
    ref = _write(tmp_path, "ref.json", _results("ref"))
    other = {"missing": str(tmp_path / "nope.json"),
             "schema": _write(tmp_path, "s.json", {"name": "x", "results": {"bpp": [1, 2]}}),
             "nooverlap": _write(tmp_path, "far.json", _results("far", psnr=_psnr(RATES) + 30)),
             }.get(kind)
    if kind == "badjson":
        other = str(tmp_path / "bad.json")
        Path(other).write_text("{not json")
    r = CliRunner().invoke(bd_cmd, [ref, other])
    assert r.exit_code == 1
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gqcodec: error: ")
    assert "Traceback" not in r.stderr


def test_plot_cli(tmp_path):
    a = _write(tmp_path, "a.json", _results("ours"))
    out = tmp_path / "plot.png"
    r = CliRunner().invoke(plot_cmd, [a, "--out", str(out), "--anchors", "none"])
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 0 and (tmp_path / "plot.svg").stat().st_size > 0
    r = CliRunner().invoke(plot_cmd, [a, "--out", str(out), "--anchors", "none"])
    assert r.exit_code == 1 and "--force" in r.stderr
    r = CliRunner().invoke(plot_cmd, [str(tmp_path / "nope.json"), "--out", str(tmp_path / "x.png")])
    assert r.exit_code == 1 and "no such file" in r.stderr and "Traceback" not in r.stderr
    r = CliRunner().invoke(plot_cmd, ["--out", str(tmp_path / "y.png"), "--anchors", "none"])
    assert r.exit_code == 2 and "nothing to plot" in r.stderr


def test_legend_columns_fit_long_labels_on_fewer_columns():
    from gqcodec.rd import legend_columns

    short = ["gqcodec", "webp", "jpeg", "avif"]
    assert legend_columns(short, 13.0) == 4
    long = ["control: factorized prior (scalar quantization), N=128 M=320", "gqcodec", "webp"]
    cols = legend_columns(long, 13.0)
    assert cols < 3 and cols * (len(long[0]) + 6) <= 13.0 * 14
    assert legend_columns(["x" * 500], 13.0) == 1 and legend_columns([], 13.0) == 1
