"""tools/tune_rdoq.py: the rule that picks the shipped RDOQ strength."""
import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("tune_rdoq", Path(__file__).parent.parent / "tools" / "tune_rdoq.py")
tune = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tune)


def test_choose_smallest_within_tolerance():
    report = {0.0: 0.0, 1.0: -12.4, 2.0: -14.9, 3.0: -15.8, 4.0: -16.1}
    assert tune.choose(report, 0.5) == 3.0
    assert tune.choose(report, 0.0) == 4.0
    assert tune.choose(report, 2.0) == 2.0


def test_choose_plain_search_when_rdoq_does_not_help():
    assert tune.choose({0.0: 0.0, 1.0: 0.3, 2.0: 1.2}, 0.5) == 0.0


def test_choose_rejects_empty_report():
    with pytest.raises(ValueError):
        tune.choose({}, 0.5)


def test_choose_top_keeps_the_top_quality_near_plain_psnr():
    res = {0.0: {8: (1.07, 28.29)}, 0.5: {8: (0.88, 28.16)}, 1.0: {8: (0.78, 27.96)}}
    assert tune.choose_top(res, 8, 0.15) == 0.5
    assert tune.choose_top(res, 8, 0.0) == 0.0
    assert tune.choose_top(res, 8, 1.0) == 1.0


def test_a_finished_ladder_is_measured_but_not_overwritten(tmp_path, monkeypatch, capsys):
    """Qualities that share a block count (a widened top) give one BD point, so measuring a
    released model works; --write, which would replace the wide top's strengths, refuses."""
    from fakezoo import half_flat_pack, install

    from gqcodec import codec, zoo

    install(tmp_path / "w", monkeypatch, ladder={"1": 1, "2": 2, "3": 3, "4": 3}, index_bits={"4": 9},
            rdoq_by_quality={"4": 0.5})
    pack = half_flat_pack(tmp_path / "pack", n=2)
    tune.main(["--model", "tiny", "--data", str(pack), "--images", "2", "--gammas", "0,1"])
    assert "gamma 1: BD-rate vs plain search" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="wider codebooks"):
        tune.main(["--model", "tiny", "--data", str(pack), "--images", "2", "--gammas", "0,1", "--write"])
    assert zoo.read_registry()["models"]["tiny"]["rdoq_by_quality"] == {"4": 0.5}
    zoo._cache.clear()
    codec._codecs.clear()
