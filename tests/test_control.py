"""tools/train_control.py and tools/eval_control.py: schedule, resumable training, real-bitstream evaluation."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

TOOLS = Path(__file__).resolve().parent.parent / "tools"


def load(name):
    spec = importlib.util.spec_from_file_location(f"gq_{name}", TOOLS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_schedule():
    tc = load("train_control")
    s = tc.parse_schedule("6750:6e-5,0:2e-4")
    assert s == [(0, 2e-4), (6750, 6e-5)]
    assert tc.lr_at(1, s) == 2e-4 and tc.lr_at(6750, s) == 2e-4 and tc.lr_at(6751, s) == 6e-5
    with pytest.raises(ValueError, match="step 0"):
        tc.parse_schedule("10:1e-4")


@pytest.fixture
def pack(noise_pack):
    return noise_pack


def test_train_resume_and_eval(tmp_path, pack):
    tc, ec = load("train_control"), load("eval_control")
    run = tmp_path / "run"
    common = ["--run-dir", str(run), "--data", str(pack), "--lmbda", "0.01", "--batch", "2", "--crop", "32",
              "--N", "8", "--M", "16", "--holdout", "1", "--log-every", "1", "--ckpt-every", "2"]
    tc.main(common + ["--steps", "2"])
    first = torch.load(run / "ckpt.pt", weights_only=False)
    assert first["step"] == 2
    tc.main(common + ["--steps", "3"])  # resumes at step 2
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    assert torch.load(run / "ckpt.pt", weights_only=False)["step"] == 3
    with pytest.raises(SystemExit, match="lmbda"):
        tc.main([*common[:4], "--lmbda", "0.02", *common[6:], "--steps", "4"])

    out = tmp_path / "control.json"
    ec.main([str(run / "ckpt.pt"), "--kodak", str(pack), "--out", str(out)])
    data = json.loads(out.read_text())
    res = data["results"]
    assert len(res["bpp"]) == 1 and res["lmbda"] == [0.01]
    assert res["bpp"][0] > ec.HEADER_BYTES * 8 / (40 * 48)  # strings plus header, from real bytes
    assert 0 < res["psnr-rgb"][0] < 60
