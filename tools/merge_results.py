"""Merge a partial re-evaluation (some qualities) into a model's published Kodak results.

    gqcodec eval --model NAME --qualities 8,9,10 --out new.json --csv new.csv
    python tools/merge_results.py docs/results/kodak/gqcodec-NAME.json new.json \\
        --csv docs/results/kodak/gqcodec-NAME.csv new.csv

Every quality of NEW replaces (or adds) that quality in BASE, in the results JSON (all per-quality
lists) and, with ``--csv``, in the per-image CSV; the other qualities stay as they were. BASE's
description gets a sentence saying which qualities were re-evaluated, when, and NEW's settings.
Both files are replaced atomically. ``tools/eval_release.sh`` uses this when QUALITIES is set.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gqcodec import rd  # noqa: E402
from gqcodec.fileutil import write_atomic  # noqa: E402


def rows_by_quality(results: dict) -> dict[int, dict]:
    """Per quality, its value of every results list (``rd.load`` has checked they are lists of one length)."""
    if "quality" not in results:
        raise SystemExit("error: results have no 'quality' list (written by gqcodec eval?)")
    return {int(q): {k: v[i] for k, v in results.items()} for i, q in enumerate(results["quality"])}


def merge_json(base: dict, new: dict, when: str) -> dict:
    keys = list(base["results"])
    if set(keys) != set(new["results"]):
        raise SystemExit("error: the two results files measure different quantities")
    add = rows_by_quality(new["results"])
    rows = {**rows_by_quality(base["results"]), **add}
    qs = sorted(rows)
    out = dict(base)
    out["results"] = {k: [rows[q][k] for q in qs] for k in keys}
    names = ", ".join(f"q{q}" for q in sorted(add))
    settings = new.get("description", "").split(". ")[0]
    out["description"] = base.get("description", "").rstrip() + f" [{names} re-evaluated {when}: {settings}]"
    return rd.validate(out)


def merge_csv(base_text: str, new_text: str, qualities: set[int]) -> str:
    base, new = csv.DictReader(io.StringIO(base_text)), csv.DictReader(io.StringIO(new_text))
    fields = base.fieldnames or new.fieldnames
    if new.fieldnames and set(new.fieldnames) != set(fields):
        raise SystemExit("error: the two CSV files have different columns")
    rows = [r for r in base if int(r["quality"]) not in qualities] + list(new)
    rows.sort(key=lambda r: (r["image"], int(r["quality"])))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--csv", nargs=2, metavar=("BASE_CSV", "NEW_CSV"))
    ap.add_argument("--date", default=datetime.date.today().isoformat())
    a = ap.parse_args(argv)
    try:
        base, new = rd.load(a.base), rd.load(a.new)
    except rd.RDError as e:
        raise SystemExit(f"error: {e}") from None
    merged = merge_json(base, new, a.date)
    qualities = {int(q) for q in new["results"]["quality"]}
    text = None
    if a.csv:
        text = merge_csv(Path(a.csv[0]).read_text(), Path(a.csv[1]).read_text(), qualities)
    write_atomic(a.base, rd.dumps(merged))
    if text is not None:
        write_atomic(a.csv[0], text)
    print(f"{a.base}: qualities {sorted(qualities)} merged; now {merged['results']['quality']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
