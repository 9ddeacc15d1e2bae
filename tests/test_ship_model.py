"""tools/ship_model.py: the quality ladder and the training record of a grown model."""
import importlib.util
from pathlib import Path

import pytest

from gqcodec.model import GQConfig

spec = importlib.util.spec_from_file_location("ship_model", Path(__file__).parent.parent / "tools" / "ship_model.py")
ship = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ship)


def test_ladder_is_cut_to_the_model_and_ends_at_all_blocks():
    assert ship.ladder_for(20) == {"1": 2, "2": 3, "3": 4, "4": 6, "5": 8, "6": 11, "7": 15, "8": 20}
    assert ship.ladder_for(32)["10"] == 32 and len(ship.ladder_for(32)) == 10
    assert ship.ladder_for(30) == {**ship.ladder_for(20), "9": 26, "10": 30}
    assert ship.ladder_for(5) == {"1": 2, "2": 3, "3": 4, "4": 5}
    for blocks in range(2, 40):
        n = list(ship.ladder_for(blocks).values())
        assert n == sorted(set(n)) and n[-1] == blocks


def test_grown_model_record_adds_the_parent_budget():
    parent = {"training": {"steps": 13500, "crops_seen": 108000, "wall_hours": 2.13, "hardware": "cpu"}}
    out = ship.with_parent({"steps": 4000, "crops_seen": 32000, "wall_hours": 1.2}, parent, "gq-a")
    assert out["warm_start"] == {"from": "gq-a", "steps": 13500, "crops_seen": 108000, "wall_hours": 2.13, "hardware": "cpu"}
    assert out["total"] == {"steps": 17500, "crops_seen": 140000, "wall_hours": 3.33}
    # a warm start of a warm start: the total runs back to the first run
    parent2 = {"training": {"steps": 6800, "crops_seen": 54400, "wall_hours": 3.57,
                            "total": {"steps": 20300, "crops_seen": 162400, "wall_hours": 5.7}}}
    out = ship.with_parent({"steps": 9751, "crops_seen": 78008, "wall_hours": 1.65}, parent2, "gq-b")
    assert out["warm_start"]["steps"] == 6800
    assert out["total"] == {"steps": 30051, "crops_seen": 240408, "wall_hours": 7.35}
    text = ship.describe(GQConfig(C=512), "gq-a")
    assert "32 nested blocks" in text and "grown from gq-a" in text
    text = ship.describe(GQConfig(C=320), "gq-a", GQConfig(C=320).to_dict())
    assert "20 nested blocks" in text and "warm-started from gq-a" in text


def test_shipping_over_an_installed_model_needs_replace():
    reg = {"models": {"gq-a": {}}}
    with pytest.raises(SystemExit, match="would no longer decode"):
        ship.check_new_name(reg, "gq-a", replace=False)
    ship.check_new_name(reg, "gq-a", replace=True)
    ship.check_new_name(reg, "gq-b", replace=False)


def test_intermediate_runs_count_in_the_total():
    parent = {"training": {"steps": 10415, "crops_seen": 83320, "wall_hours": 2.94,
                           "total": {"steps": 40466, "crops_seen": 323728, "wall_hours": 10.3}}}
    via = [{"run": "a", "steps": 593, "crops_seen": 4744, "wall_hours": 0.15, "precision": "fp32"},
           {"run": "b", "steps": 3551, "crops_seen": 28408, "wall_hours": 0.41, "precision": "bf16"}]
    out = ship.with_parent({"steps": 9000, "crops_seen": 72000, "wall_hours": 1.2}, parent, "gq-r4", via)
    assert out["warm_start"]["via"] == via and out["warm_start"]["steps"] == 10415
    assert out["total"] == {"steps": 40466 + 593 + 3551 + 9000, "crops_seen": 323728 + 4744 + 28408 + 72000,
                            "wall_hours": round(10.3 + 0.15 + 0.41 + 1.2, 2)}
    assert "via" not in ship.with_parent({"steps": 1}, parent, "gq-r4")["warm_start"]
