"""tools/device_pack.py and tools/device_train.sh: the GPU training call, rehearsed on the CPU."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).parent.parent
spec = importlib.util.spec_from_file_location("device_pack", ROOT / "tools" / "device_pack.py")
pack = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pack)


def test_choose_keeps_the_holdout_and_the_first_images_that_fit():
    sizes = [10, 20, 30, 40, 50, 5, 5]
    assert pack.choose(sizes, 40, 2) == [0, 1, 5, 6]  # 10 + 20 + the held-back 5 + 5
    assert pack.choose(sizes, 9, 2) == [5, 6]  # the holdout is always copied
    assert pack.choose(sizes, 10**6, 2) == list(range(7))
    assert pack.choose(sizes, 25, 0) == [0]


def test_pack_copies_within_the_budget(tmp_path, noise_pack):
    out = tmp_path / "tp"
    size = max(p.stat().st_size for p in noise_pack.iterdir())
    pack.main(["--data", str(noise_pack), "--out", str(out), "--budget-mib", str(2.5 * size / (1 << 20)), "--holdout", "1"])
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "3.png"]  # one head image fits next to the held-back one


def run_script(tmp_path, pack_dir, out="out", **env):
    out = tmp_path / out  # the device tool empties $OUT before each call: a fresh folder per call
    out.mkdir()
    e = dict(os.environ, OUT=str(out), PYTHON=sys.executable, DEVICE="cpu", LIMIT_S="1", STEPS="2", BATCH="1",
             CROP="32", PACK=str(pack_dir), RUN=str(tmp_path / "run"))
    e.update(env)
    r = subprocess.run(["bash", str(ROOT / "tools" / "device_train.sh")], env=e, capture_output=True, text=True, timeout=600)
    return r, out


def test_device_train_script_on_the_cpu(tmp_path, noise_pack):
    torch.set_num_threads(1)
    r, out = run_script(tmp_path, noise_pack, OMP_NUM_THREADS="1")
    assert r.returncode == 0, r.stdout + r.stderr
    check = json.loads((out / "device_check.json").read_text())
    assert check["device_available"] and check["search_matches"] and check["seconds_per_step"] > 0
    parts = sorted(out.glob("ckpt.part-*"))
    assert parts and all(p.stat().st_size <= 15 << 20 for p in parts)
    whole = tmp_path / "ckpt.pt"
    whole.write_bytes(b"".join(p.read_bytes() for p in parts))
    ck = torch.load(whole, weights_only=False)
    assert 1 <= ck["step"] <= 2 and "optimizer" in ck and ck["train_config"]["crop"] == 32
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == ck["step"]
    # a second call on the same machine resumes the run it left
    r, out = run_script(tmp_path, noise_pack, out="out2", OMP_NUM_THREADS="1", STEPS="3", LIMIT_S="100")
    assert r.returncode == 0, r.stdout + r.stderr
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 3 and log[0]["step"] == ck["step"]


def test_device_train_script_needs_the_pack(tmp_path):
    r, _ = run_script(tmp_path, tmp_path / "missing")
    assert r.returncode == 2 and "training images not found" in r.stdout


def _repo_with_superseded_weights(root):
    weights = root / "gqcodec" / "weights"
    weights.mkdir(parents=True)
    reg = {"default": "new", "models": {
        "old": {"weights": "old.safetensors", "prior": "old.prior.npz", "decoder_only": True},
        "new": {"weights": "new.safetensors", "prior": "new.prior.npz"}}}
    (weights / "registry.json").write_text(json.dumps(reg))
    for name in ("old.safetensors", "old.prior.npz", "new.safetensors", "new.prior.npz"):
        (weights / name).write_bytes(os.urandom(1000))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(root)]
    subprocess.run(git[:5] + ["init", "-q", str(root)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "weights"], check=True)
    return git


def test_hide_superseded_untracks_them_guards_commits_and_restores(tmp_path, noise_pack):
    root = tmp_path / "repo"
    git = _repo_with_superseded_weights(root)
    before = pack.tracked_bytes(root)

    def listed():
        return subprocess.run(git + ["ls-files", "--cached", "--others", "--exclude-standard"],
                              capture_output=True, text=True, check=True).stdout.split()

    assert "gqcodec/weights/old.safetensors" in listed()
    size = max(p.stat().st_size for p in noise_pack.iterdir())
    pack.main(["--root", str(root), "--hide-superseded", "--data", str(noise_pack), "--out", str(tmp_path / "tp"),
               "--budget-mib", str(1.5 * size / (1 << 20)), "--holdout", "1"])
    assert (tmp_path / "tp").is_dir()
    # what the device tool sends (tracked plus untracked-not-ignored) no longer holds the old model's files,
    # which stay on disk; the default model's files still travel
    assert sorted(p for p in listed() if "weights/" in p and "registry" not in p) == [
        "gqcodec/weights/new.prior.npz", "gqcodec/weights/new.safetensors"]
    assert (root / "gqcodec/weights/old.safetensors").is_file()
    assert pack.tracked_bytes(root) == before - 2000
    assert pack.hidden_files(root) == ["gqcodec/weights/old.prior.npz", "gqcodec/weights/old.safetensors"]
    # a commit now would delete them: the hook refuses it
    r = subprocess.run(git + ["commit", "-q", "-m", "oops"], capture_output=True, text=True)
    assert r.returncode != 0 and "--restore" in r.stderr
    with pytest.raises(SystemExit, match="hidden already"):
        pack.hide_superseded(root)

    assert pack.main(["--root", str(root), "--restore"]) == 0
    status = subprocess.run(git + ["status", "--porcelain", "--ignored"], capture_output=True, text=True, check=True)
    assert status.stdout == ""  # back exactly as committed: nothing staged, nothing ignored
    assert "gqcodec/weights/old.safetensors" in listed() and pack.hidden_files(root) == []
    assert not (root / ".git/hooks/pre-commit").exists()
    with pytest.raises(SystemExit, match="nothing is hidden"):
        pack.restore(root)
