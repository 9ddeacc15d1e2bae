"""tools/merge_results.py: a partial Kodak re-evaluation merged into published results."""
import importlib.util
import json
from pathlib import Path

import pytest

from gqcodec import rd

spec = importlib.util.spec_from_file_location("merge_results", Path(__file__).parent.parent / "tools" / "merge_results.py")
merge = importlib.util.module_from_spec(spec)
spec.loader.exec_module(merge)


def results(qs, base, desc):
    return {"name": "gqcodec-x", "description": desc,
            "results": {"bpp": [0.1 * q + base for q in qs], "psnr-rgb": [20.0 + q + base for q in qs],
                        "quality": list(qs)}}


def table(qs, images, base):
    lines = ["image,quality,bpp,psnr"]
    for im in images:
        for q in qs:
            lines.append(f"{im},{q},{0.1 * q + base},{20 + q + base}")
    return "\n".join(lines) + "\n"


def test_merge_replaces_and_adds_qualities(tmp_path):
    bj, nj = tmp_path / "base.json", tmp_path / "new.json"
    bc, nc = tmp_path / "base.csv", tmp_path / "new.csv"
    bj.write_text(json.dumps(results([1, 2, 3], 0.0, "old settings. 24 images")))
    nj.write_text(json.dumps(results([3, 4], 0.5, "new settings q3 q4. 24 images")))
    bc.write_text(table([1, 2, 3], ["a.png", "b.png"], 0.0))
    nc.write_text(table([3, 4], ["a.png", "b.png"], 0.5))
    merge.main([str(bj), str(nj), "--csv", str(bc), str(nc), "--date", "2026-12-01"])
    out = rd.load(bj)
    assert out["results"]["quality"] == [1, 2, 3, 4]
    assert out["results"]["bpp"] == pytest.approx([0.1, 0.2, 0.8, 0.9])  # q1, q2 kept; q3 replaced; q4 added
    assert out["results"]["psnr-rgb"][2] == pytest.approx(23.5)
    assert out["description"].startswith("old settings. 24 images")
    assert "[q3, q4 re-evaluated 2026-12-01: new settings q3 q4]" in out["description"]
    rows = bc.read_text().splitlines()
    assert rows[0] == "image,quality,bpp,psnr" and len(rows) == 1 + 8
    assert [r.split(",")[:2] for r in rows[1:5]] == [["a.png", "1"], ["a.png", "2"], ["a.png", "3"], ["a.png", "4"]]
    assert rows[3].split(",")[2] == "0.8"  # a.png q3 from the new file


def test_merge_refuses_mismatched_files(tmp_path):
    bj, nj = tmp_path / "base.json", tmp_path / "new.json"
    bj.write_text(json.dumps(results([1, 2], 0.0, "a")))
    other = results([2], 0.0, "b")
    other["results"]["ms-ssim-rgb"] = [0.9]
    nj.write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="different quantities"):
        merge.main([str(bj), str(nj)])
    assert rd.load(bj)["results"]["quality"] == [1, 2]  # untouched
    bc, nc = tmp_path / "b.csv", tmp_path / "n.csv"
    bc.write_text(table([1], ["a.png"], 0.0))
    nc.write_text("image,quality,bpp\na.png,1,0.3\n")
    nj.write_text(json.dumps(results([1], 0.0, "c")))
    with pytest.raises(SystemExit, match="different columns"):
        merge.main([str(bj), str(nj), "--csv", str(bc), str(nc)])
    assert bc.read_text() == table([1], ["a.png"], 0.0)
