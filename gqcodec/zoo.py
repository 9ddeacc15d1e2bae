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
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from .model import GQConfig, GQVAE

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def export_weights(model: GQVAE, path: str | Path, extra: dict | None = None) -> None:
    """Write the model as fp16 safetensors with its config in the metadata."""
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    meta = {"config": json.dumps(model.config.to_dict()), "format": "gqcodec-weights-v1"}
    if extra:
        meta["extra"] = json.dumps(extra)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)


def read_metadata(path: str | Path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        return f.metadata() or {}


def load_weights(path: str | Path, device: str = "cpu") -> GQVAE:
    """A GQVAE (fp32, eval mode) from a weights file written by :func:`export_weights`."""
    meta = read_metadata(path)
    if "config" not in meta:
        raise ValueError(f"{path}: not a gqcodec weights file (no config in metadata)")
    model = GQVAE(GQConfig.from_dict(json.loads(meta["config"])))
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
