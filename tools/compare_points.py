"""Point-by-point comparison of two RD curves at equal rate and at equal PSNR.

BD-rate averages over the overlap of two curves and needs enough points on both; a
control with two rate points is better read point by point. For each point of TEST
this prints the reference's PSNR at the same bpp and the bpp the reference needs for
the same PSNR (PCHIP interpolation of PSNR over log-rate, as in the BD-PCHIP method;
outside the reference's range: n/a, never extrapolated). "rate" is the test's bpp against the
reference's at equal PSNR (negative: the test needs fewer bits).

    python tools/compare_points.py docs/results/kodak/gqcodec-gq-n128-c320.json \
        docs/results/kodak/control-factorized-n128-m320.json [--json]
"""
from __future__ import annotations

import argparse
import json
import math

import numpy as np
from scipy.interpolate import PchipInterpolator

from gqcodec import rd


def compare(ref: dict, test: dict) -> list[dict]:
    """One row per test point: its bpp/PSNR, the reference's PSNR at that bpp, its bpp at that PSNR."""
    rb, rq = rd.curve(ref)
    tb, tq = rd.curve(test)
    if rb.size < 2 or np.any(np.diff(rb) <= 0) or np.any(np.diff(rq) <= 0):
        raise SystemExit(f"{ref['name']}: the reference needs >= 2 points with rate and PSNR both increasing")
    psnr_at = PchipInterpolator(np.log(rb), rq, extrapolate=False)
    logbpp_at = PchipInterpolator(rq, np.log(rb), extrapolate=False)
    rows = []
    for b, q in zip(tb, tq):
        p = float(psnr_at(math.log(b)))
        lb = float(logbpp_at(q))
        rows.append({"bpp": float(b), "psnr": float(q),
                     "ref_psnr_at_bpp": None if math.isnan(p) else p,
                     "delta_psnr_db": None if math.isnan(p) else float(q - p),
                     "ref_bpp_at_psnr": None if math.isnan(lb) else math.exp(lb),
                     "rate_diff_percent": None if math.isnan(lb) else float((b / math.exp(lb) - 1) * 100)})
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ref")
    ap.add_argument("test")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    ref, test = rd.load(a.ref), rd.load(a.test)
    rows = compare(ref, test)
    if a.json:
        print(json.dumps({"ref": ref["name"], "test": test["name"], "points": rows}, indent=2))
        return
    fmt = lambda v, f: "n/a" if v is None else f % v
    print(f"ref:  {ref['name']}\ntest: {test['name']}")
    print(f"{'test bpp':>9} {'test dB':>8} {'ref dB @bpp':>12} {'dPSNR':>7} {'ref bpp @dB':>12} {'rate':>8}")
    for r in rows:
        print(f"{r['bpp']:>9.4f} {r['psnr']:>8.2f} {fmt(r['ref_psnr_at_bpp'], '%.2f'):>12} "
              f"{fmt(r['delta_psnr_db'], '%+.2f'):>7} {fmt(r['ref_bpp_at_psnr'], '%.4f'):>12} "
              f"{fmt(r['rate_diff_percent'], '%+.1f%%'):>8}")


if __name__ == "__main__":
    main()
