"""Shipped models: weights I/O and the registry of the quality ladder.

Weights are safetensors files (fp16) inside ``gqcodec/weights/``; each file's
metadata carries the JSON model config, so a weight file is self-describing.
The registry (``weights/registry.json``) maps model names to weight files,
their quality ladder (blocks kept per quality), measured Kodak numbers and the
model hash written into every .gqc header.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import safe_open

from .config import GQConfig

if TYPE_CHECKING:  # the registry, priors and model hashes need no torch; only the network does
    from .model import GQVAE

# GQCODEC_WEIGHTS_DIR points the registry at another folder of models (same layout)
WEIGHTS_DIR = Path(os.environ.get("GQCODEC_WEIGHTS_DIR") or Path(__file__).resolve().parent / "weights")


def export_state(model: GQVAE) -> dict:
    """The state dict as a weights file stores it: convolution kernels fp16; GDN parameters and
    biases (tiny values near the reparameterisation pedestal) fp32."""
    import torch

    return {k: (v.detach().to(torch.float16) if v.dim() == 4 else v.detach().float()).contiguous()
            for k, v in model.state_dict().items()}


def export_weights(model: GQVAE, path: str | Path, extra: dict | None = None) -> None:
    """Write the model as safetensors (:func:`export_state`) with its config in the metadata."""
    state = export_state(model)
    meta = {"config": json.dumps(model.config.to_dict()), "format": "gqcodec-weights-v1"}
    if extra:
        meta["extra"] = json.dumps(extra)
    _save(state, path, meta)


def _save(state: dict, path: str | Path, meta: dict) -> None:
    """Write a safetensors file atomically (a failed write leaves no partial file)."""
    from safetensors.torch import save_file

    from .fileutil import write_atomic

    write_atomic(path, lambda tmp: save_file(state, tmp, metadata=meta))


def read_metadata(path: str | Path) -> dict:
    with safe_open(str(path), framework="numpy") as f:
        return f.metadata() or {}


def read_config(path: str | Path, meta: dict | None = None) -> GQConfig:
    """The model config in a weights file's metadata (``meta``, when already read); ValueError when
    it has none."""
    meta = read_metadata(path) if meta is None else meta
    if "config" not in meta:
        raise ValueError(f"{path}: not a gqcodec weights file (no config in metadata)")
    return GQConfig.from_dict(json.loads(meta["config"]))


def load_weights(path: str | Path, device: str = "cpu") -> GQVAE:
    """A GQVAE (fp32, eval mode) from a weights file written by :func:`export_weights`."""
    from safetensors.torch import load_file

    from .model import GQVAE

    meta = read_metadata(path)
    model = GQVAE(read_config(path, meta))
    if meta.get("decoder_only") == "1":
        model.drop_encoder()
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def strip_encoder(src: str | Path, dst: str | Path) -> None:
    """Write ``src``'s weights without the analysis transform (``g_a``) to ``dst``: a decoder-only
    file, marked ``decoder_only`` in its metadata. The decoder's tensors are copied unchanged."""
    from safetensors.torch import load_file

    meta = read_metadata(src)
    read_config(src, meta)  # a gqcodec weights file
    state = {k: v for k, v in load_file(str(src)).items() if not k.startswith("g_a.")}
    _save(state, dst, {**meta, "decoder_only": "1"})


def weights_digest(path: str | Path) -> str:
    """SHA-256 over a weights file's content: config and tensors in name order.

    (The file bytes themselves are not stable: safetensors writes metadata in
    hash-map order.) The tensors are read with numpy, no torch; each dtype enters the digest
    under torch's name (``torch.float16``), as when the digests in the registry and in every
    shipped file's model hash were first computed.
    """
    from safetensors.numpy import load_file

    meta = read_metadata(path)
    h = hashlib.sha256(json.dumps(json.loads(meta.get("config", "{}")), sort_keys=True).encode())
    for k, v in sorted(load_file(str(path)).items()):
        h.update(f"{k}|torch.{v.dtype}|{tuple(v.shape)}|".encode())
        h.update(v.tobytes() if v.size else b"")  # C order, native (little-endian) bytes
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- registry ----------------------------------------------------------------
REGISTRY_FILE = WEIGHTS_DIR / "registry.json"  # noqa: E305
_cache: dict = {}


class UnknownModelError(ValueError):
    """The requested (or the file's) model is not installed."""


def rdoq_strength(entry: dict, quality: int) -> float:
    """A registry entry's tuned RDOQ strength for ``quality``: its ``rdoq_by_quality``
    override, else its ``rdoq`` (0, the plain search, when the entry has neither)."""
    return float(entry.get("rdoq_by_quality", {}).get(str(int(quality)), entry.get("rdoq", 0.0)))


def save_registry(reg: dict) -> None:
    """Replace the registry file atomically (release tools) and drop the cached copy."""
    from .fileutil import write_atomic

    write_atomic(REGISTRY_FILE, json.dumps(reg, indent=2) + "\n")
    _cache.pop("registry", None)


def read_registry() -> dict:
    """A fresh, editable copy of the registry file (release tools edit it, then ``save_registry``)."""
    if not REGISTRY_FILE.exists():
        return {"default": None, "models": {}}
    return json.loads(REGISTRY_FILE.read_text())


def registry() -> dict:
    """The shipped registry: ``{"default": name, "models": {name: entry}}`` (cached; do not edit)."""
    if "registry" not in _cache:
        _cache["registry"] = read_registry()
    return _cache["registry"]


def model_names() -> list[str]:
    return sorted(registry()["models"])


def default_name() -> str:
    name = registry().get("default")
    if not name:
        raise UnknownModelError("no model is installed (gqcodec/weights/registry.json is empty)")
    return name


def entry(name: str | None = None) -> dict:
    """Registry entry of a model (the default model when ``name`` is None)."""
    name = name or default_name()
    models = registry()["models"]
    if name not in models:
        raise UnknownModelError(f"unknown model '{name}' (installed: {', '.join(sorted(models)) or 'none'})")
    e = dict(models[name])
    e["name"] = name
    return e


def weights_path(name: str | None = None) -> Path:
    """The installed weights file of a model (the default model when ``name`` is None)."""
    return WEIGHTS_DIR / entry(name)["weights"]


def model_config(name: str | None = None) -> GQConfig:
    """The config of an installed model (the default model when ``name`` is None), from its
    weights file's metadata (no torch)."""
    e = entry(name)
    key = ("config", e["name"])
    if key not in _cache:
        _cache[key] = read_config(WEIGHTS_DIR / e["weights"])
    return _cache[key]


def load_model(name: str | None = None, device: str = "cpu") -> GQVAE:
    e = entry(name)
    key = ("model", e["name"], str(device))
    if key not in _cache:
        model = load_weights(weights_path(e["name"]), device=device)
        if "beta" in e:
            model.quantizer.beta = float(e["beta"])
        _cache[key] = model
    return _cache[key]


def load_prior(name: str | None = None):
    """The model's range-coding index prior (``bitstream.Prior``) or None."""
    e = entry(name)
    if not e.get("prior"):
        return None
    key = ("prior", e["name"])
    if key not in _cache:
        from bitstream import Prior

        _cache[key] = Prior.load(WEIGHTS_DIR / e["prior"])
    return _cache[key]


def model_hash(name: str | None = None) -> bytes:
    """8-byte id of (weights, codebook, prior) written into every .gqc header."""
    e = entry(name)
    key = ("hash", e["name"])
    if key not in _cache:
        from .codebook import codebook_hash

        cfg = model_config(e["name"])
        h = hashlib.sha256()
        digest = weights_digest(WEIGHTS_DIR / e["weights"])
        if e.get("decoder_only") and digest == e.get("decoder_digest"):
            digest = e["weights_digest"]  # the full model's, which its files were written with
        h.update(digest.encode())
        h.update(codebook_hash(cfg.seed, cfg.K, cfg.m).encode())
        prior = load_prior(e["name"])
        h.update(prior.sha256().encode() if prior is not None else b"no-prior")
        h.update(repr(float(e.get("beta", cfg.beta))).encode())
        _cache[key] = h.digest()[:8]
    return _cache[key]
