"""Is a checkpoint better than the shipped model?  GQ PSNR at every ladder depth, side by side.

    python tools/compare_models.py /work/runs/gq-s12/ckpt.pt [MORE.pt|.safetensors ...] [--model NAME]

For the shipped model (``--model``, default: the default model) and each checkpoint or weights
file, the PSNR of plain GQ decoding (no RDOQ, every block kept) with n = each of the shipped
ladder's block counts, on the last ``--images`` images of the training pack (training holds
the last 8 back) and the mean over the ladder, with its difference to the shipped model.
Checkpoint weights are rounded like an export (fp16 convolution kernels), so the comparison
is with what would ship. A quick guide for a release decision: it needs neither a prior nor
Kodak (Kodak numbers come from real files after `tools/release.sh`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from gqcodec import zoo
from gqcodec.model import GQVAE
from gqcodec.train import DEFAULT_DATA, list_images, load_pack, read_init, validate


def as_shipped(path: str, beta: float) -> tuple[GQVAE, str]:
    """The model in ``path`` (checkpoint .pt or weights file) as an export would ship it, and a label."""
    init = read_init(path)
    model = GQVAE(init["config"])
    model.load_state_dict(init["model"])
    model.load_state_dict({k: v.float() for k, v in zoo.export_state(model).items()})  # fp16 kernels, like a weights file
    model.quantizer.beta = beta
    label = Path(path).name + (f"@{init['step']}" if path.endswith(".pt") else "")
    return model.eval(), label


def shape(cfg) -> tuple:
    return cfg.N, cfg.C, cfg.m, cfg.K_bits, cfg.seed


def psnr_row(model: GQVAE, images, ladder: list[int]) -> list[float]:
    r = validate(model, images, torch.device("cpu"), ladder)
    return [r[f"psnr_gq_{n}"] for n in ladder]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("candidates", nargs="+", help="checkpoints (.pt) or weights files (.safetensors)")
    ap.add_argument("--model", default=None, help="shipped model to compare with (default: the default model)")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--images", type=int, default=8, help="the last N images of the training pack")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    e = zoo.entry(a.model)
    ladder = sorted(set(e["ladder"].values()))
    images = load_pack(list_images(a.data)[-a.images:], 16)
    shipped = zoo.load_model(e["name"])
    rows = [(e["name"], psnr_row(shipped, images, ladder))]
    for path in a.candidates:
        model, label = as_shipped(path, shipped.quantizer.beta)
        if shape(model.config) != shape(shipped.config):
            raise SystemExit(f"{path}: config {model.config.to_dict()} differs from {e['name']}'s; "
                             "compare models of the same shape")
        rows.append((label, psnr_row(model, images, ladder)))
    base = float(np.mean(rows[0][1]))
    print(f"GQ PSNR (dB) on the last {len(images)} images of {a.data}, n blocks everywhere, plain search")
    print(f"{'model':<28}" + "".join(f"{'n=' + str(n):>8}" for n in ladder) + f"{'mean':>8}{'Δ mean':>8}")
    for label, ps in rows:
        m = float(np.mean(ps))
        print(f"{label:<28}" + "".join(f"{p:>8.3f}" for p in ps) + f"{m:>8.3f}{m - base:>+8.3f}")


if __name__ == "__main__":
    main()
