"""Static index priors for range coding, measured on training images.

For every block position along the channel axis (block 0, 1, ...), the
histogram of GQ indices over a set of training images is turned into a
positive integer frequency table (add-``alpha`` smoothing as ``counts * 1/alpha + 1``) and shipped with
the model as ``bitstream.Prior`` tables.  Decoding with integer tables is
bit-exact on every machine.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .model import GQVAE
from .train import list_images, load_pack


@torch.inference_mode()
def index_counts(model: GQVAE, images: list[torch.Tensor], crop: int = 256, progress: bool = False) -> np.ndarray:
    """(blocks, K) int64 histogram of GQ indices over uint8 (3, H, W) images (center crops)."""
    c = model.config
    counts = np.zeros((c.blocks, c.K), dtype=np.int64)
    it = images
    if progress:
        from tqdm import tqdm

        it = tqdm(images, desc="index histogram", mininterval=5)
    for im in it:
        _, h, w = im.shape
        s = min(crop, h, w) // 16 * 16
        y, x = (h - s) // 2, (w - s) // 2
        xt = im[None, :, y:y + s, x:x + s].float().div(255)
        idx = model.encode_indices(xt)[0].numpy()  # (blocks, h, w)
        for b in range(c.blocks):
            counts[b] += np.bincount(idx[b].ravel(), minlength=c.K)
    return counts


def measure_prior(model: GQVAE, folder: str | Path, max_images: int = 400, alpha: float = 0.5,
                  progress: bool = False):
    """A ``bitstream.Prior`` from the first ``max_images`` images of a folder."""
    from bitstream import Prior

    files = list_images(folder)[:max_images]
    counts = index_counts(model, load_pack(files, 16), progress=progress)
    return prior_from_counts(counts, alpha), counts


def prior_from_counts(counts: np.ndarray, alpha: float):
    """Integer tables ``counts * round(1/alpha) + 1``: add-``alpha`` smoothing kept exact in integers
    (the tables stay small integers, so the shipped .npz compresses well)."""
    from bitstream import Prior

    scale = max(1, round(1.0 / alpha))
    freqs = counts.astype(np.int64) * scale + 1
    if freqs.sum(axis=1).max() >= 2**32:
        return Prior.from_counts(counts, alpha)
    return Prior(freqs.astype(np.uint32))


def cross_entropy_bits(counts: np.ndarray, prior) -> float:
    """Mean code length (bits/index) of the symbols in ``counts`` (blocks, K) under ``prior``."""
    freqs = np.asarray(prior.freqs, dtype=np.float64)
    total = 0.0
    for b in range(counts.shape[0]):
        t = freqs[b if freqs.shape[0] > 1 else 0]
        p = t / t.sum()
        total += -(counts[b] * np.log2(p)).sum()
    return total / counts.sum()
