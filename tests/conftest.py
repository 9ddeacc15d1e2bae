import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True, scope="session")
def _threads():
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A tiny random model installed as the default model of a temporary registry; yields its folder."""
    from fakezoo import install
    from gqcodec import codec, zoo

    install(tmp_path / "weights", monkeypatch)
    yield tmp_path / "weights"
    zoo._cache.clear()
    codec._codecs.clear()


@pytest.fixture
def noise_pack(tmp_path):
    """A folder of 4 random 40x48 RGB PNGs, standing in for the training pack."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    d = tmp_path / "pack"
    d.mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return d
