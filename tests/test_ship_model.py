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


def test_candidate_keeps_weights_and_run_record_for_a_later_release(tmp_path):
    import json

    import torch

    from gqcodec import zoo
    from gqcodec.model import GQVAE
    from gqcodec.train import read_init

    model = GQVAE(GQConfig(N=8, C=32, m=16, K_bits=6))
    run = tmp_path / "gq-x"
    run.mkdir()
    torch.save({"model_config": model.config.to_dict(), "model": model.state_dict(), "step": 300,
                "tdc": {"lam": torch.full((2,), 0.5)}, "train_config": {"batch": 8, "crop": 128, "precision": "bf16"}},
               run / "ckpt.pt")
    log = [{"step": s, "s_per_step": 2.0, "kl_mean": 6.1, "in_band": 0.4, **({"val_psnr_gq_2": 20.5} if s == 300 else {})}
           for s in (100, 200, 300)]
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    out = tmp_path / "cand" / "gq-x.safetensors"
    rec = ship.export_candidate(run / "ckpt.pt", run, out)
    assert rec == {"run": "gq-x", "steps": 300, "crops_seen": 2400, "wall_hours": round(600 / 3600, 2), "precision": "bf16"}
    # --via FILE reads the same record back; a warm start from FILE gets the weights, TDC state and step
    assert ship.run_record(out) == rec
    init = read_init(str(out))
    assert init["step"] == 300 and torch.equal(init["tdc"]["lam"], torch.full((2,), 0.5))
    assert init["config"] == model.config and set(init["model"]) == set(model.state_dict())
    for k, v in model.state_dict().items():  # as shipped: kernels rounded to fp16
        assert torch.allclose(init["model"][k].float(), v.float(), rtol=1e-3, atol=1e-4), k
    with pytest.raises(SystemExit, match="never overwritten"):
        ship.export_candidate(run / "ckpt.pt", run, out)
    # a release's weights file has no run record, so --via refuses it with a clear message
    plain = tmp_path / "plain.safetensors"
    zoo.export_weights(model, plain)
    with pytest.raises(SystemExit, match="no run record"):
        ship.run_record(plain)
