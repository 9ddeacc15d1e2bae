"""tools/compare_points.py: equal-rate and equal-PSNR reading of a two-point control."""
import importlib.util
from pathlib import Path

import pytest

from gqcodec import rd

spec = importlib.util.spec_from_file_location("compare_points",
                                              Path(__file__).parent.parent / "tools" / "compare_points.py")
cp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cp)


def _curve(name, bpp, psnr):
    return rd.make_results(name, "synthetic", {"bpp": bpp, "psnr-rgb": psnr})


def test_points_on_the_reference_and_between():
    ref = _curve("ref", [0.1, 0.2, 0.4], [25.0, 27.0, 29.0])
    rows = cp.compare(ref, _curve("t", [0.2, 0.3], [28.0, 27.0]))
    a, b = rows
    assert a["ref_psnr_at_bpp"] == pytest.approx(27.0) and a["delta_psnr_db"] == pytest.approx(1.0)
    assert 0.2 < a["ref_bpp_at_psnr"] < 0.4 and a["rate_diff_percent"] < 0
    assert b["delta_psnr_db"] < 0 and b["ref_bpp_at_psnr"] == pytest.approx(0.2)
    assert b["rate_diff_percent"] == pytest.approx(50.0)


def test_outside_the_reference_is_not_extrapolated():
    ref = _curve("ref", [0.1, 0.2], [25.0, 27.0])
    (row,) = cp.compare(ref, _curve("t", [0.05], [30.0]))
    assert row["ref_psnr_at_bpp"] is None and row["ref_bpp_at_psnr"] is None
