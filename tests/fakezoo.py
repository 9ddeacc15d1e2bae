"""A tiny random model installed into a temporary registry, for fast codec tests."""
import json

import numpy as np
import torch

from bitstream import Prior
from gqcodec import codec, zoo
from gqcodec.model import GQConfig, GQVAE

TINY = dict(N=16, C=48, m=16, K_bits=8, seed=5)


def install(folder, monkeypatch, name="tiny", with_prior=True, **extra):
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = GQVAE(GQConfig(**TINY))
    zoo.export_weights(model, folder / f"{name}.safetensors")
    entry = {"weights": f"{name}.safetensors", "K_bits": 8, "ladder": {"1": 1, "2": 2, "3": 3},
             "default_quality": 2, "description": "random tiny test model"}
    if with_prior:
        rng = np.random.default_rng(0)
        Prior.from_counts(rng.integers(0, 50, (3, 256)), 1.0).save(folder / f"{name}.prior.npz")
        entry["prior"] = f"{name}.prior.npz"
    entry.update(extra)
    reg = {"default": name, "models": {name: entry}}
    (folder / "registry.json").write_text(json.dumps(reg))
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", folder)
    monkeypatch.setattr(zoo, "REGISTRY_FILE", folder / "registry.json")
    zoo._cache.clear()
    codec._codecs.clear()
    return name


def installed_codec(folder, monkeypatch, **extra):
    """For fixtures (``yield from``): the tiny model installed with registry ``extra`` fields, as a
    loaded Codec; the registry and codec caches are cleared afterwards."""
    install(folder, monkeypatch, **extra)
    yield codec.Codec("tiny")
    zoo._cache.clear()
    codec._codecs.clear()


def add_context(name="tiny", seed=5):
    """Give an installed model's prior a block-0 context model (``copy_context``) and clear the caches."""
    from test_bitstream_helpers import copy_context

    path = zoo.WEIGHTS_DIR / f"{name}.prior.npz"
    p = Prior.load(path)
    Prior(p.freqs, p.select, copy_context(p, seed=seed)).save(path)
    zoo._cache.clear()
    codec._codecs.clear()


def half_flat_pack(folder, n=2, h=64, w=64):
    """``n`` PNGs, flat gray on the left half and random noise on the right, standing in for the
    training pack in the tuning tools' tests; returns the folder."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        a = np.full((h, w, 3), 100, dtype=np.uint8)
        a[:, w // 2:] = rng.integers(0, 256, (h, w - w // 2, 3), dtype=np.uint8)
        Image.fromarray(a).save(folder / f"{i}.png")
    return folder


def load_tool(name: str):
    """tools/NAME.py imported as a module (the tools folder is not a package)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(f"gq_tool_{name}", Path(__file__).parent.parent / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
