"""tools/compare_models.py: shipped model against candidate weights on training-pack images."""
import importlib.util
from pathlib import Path

import pytest
import torch

from fakezoo import install
from gqcodec import zoo

spec = importlib.util.spec_from_file_location("compare_models", Path(__file__).parent.parent / "tools" / "compare_models.py")
cmp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cmp)


@pytest.fixture
def pack(noise_pack):
    return noise_pack


def rows(out: str) -> dict:
    return {line.split()[0]: [float(v) for v in line.split()[1:]] for line in out.splitlines()[2:]}


def test_same_weights_compare_equal_and_changed_weights_differ(tmp_path, monkeypatch, capsys, pack):
    name = install(tmp_path / "w", monkeypatch)
    same = str(zoo.WEIGHTS_DIR / zoo.entry(name)["weights"])
    model = zoo.load_model(name)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(3)
    for k, v in state.items():
        if v.dim() == 4:
            v.add_(0.2 * torch.randn_like(v))
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"model": state, "model_config": model.config.to_dict(), "step": 7}, ckpt)
    cmp.main([same, str(ckpt), "--data", str(pack), "--images", "2"])
    r = rows(capsys.readouterr().out)
    assert set(r) == {name, Path(same).name, "ckpt.pt@7"}
    assert len(r[name]) == 3 + 2  # ladder 1, 2, 3 blocks, mean, delta
    assert r[Path(same).name] == r[name][:-1] + [0.0]
    assert r["ckpt.pt@7"][:3] != r[name][:3]
    zoo._cache.clear()


def test_a_model_of_another_shape_is_refused(tmp_path, monkeypatch, pack):
    from gqcodec.model import GQConfig, GQVAE

    install(tmp_path / "w", monkeypatch)
    other = GQVAE(GQConfig(N=16, C=32, m=16, K_bits=8, seed=5))
    ckpt = tmp_path / "other.pt"
    torch.save({"model": other.state_dict(), "model_config": other.config.to_dict(), "step": 1}, ckpt)
    with pytest.raises(SystemExit, match="differs"):
        cmp.main([str(ckpt), "--data", str(pack), "--images", "2"])
    zoo._cache.clear()
