"""Re-measure a shipped model's index prior under rate-optimised quantization.

With RDOQ the encoder favours indices the prior finds probable, so the index
statistics shift towards them; a prior measured on those indices codes them in
fewer bits (one step of an entropy-constrained Lloyd iteration: the codebook is
fixed, only the code lengths are re-estimated). Each run:

1. encodes the first ``--images`` training-pack images with all blocks, searching
   with ``gamma * ln P(index)`` under the model's *current* prior;
2. turns the per-block histograms into integer tables (add-``alpha`` smoothing)
   and replaces the shipped prior file;
3. appends the step to the registry's ``prior_stats.history``.

Replacing the prior changes the model hash, so files written with the old prior
are refused with a clear message instead of decoding wrongly. Re-run
``tools/tune_rdoq.py --write`` and the Kodak evaluation afterwards.

    python tools/rdoq_prior.py --gamma 2 --images 600
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from gqcodec import zoo
from gqcodec.codec import Codec
from gqcodec.prior import cross_entropy_bits, prior_from_counts
from gqcodec.train import DEFAULT_DATA, list_images, load_pack


def rdoq_counts(codec: Codec, images, gamma: float, progress: bool = True) -> np.ndarray:
    """(blocks, K) histogram of the indices chosen with strength ``gamma`` under ``codec.prior``."""
    cfg = codec.model.config
    counts = np.zeros((cfg.blocks, cfg.K), dtype=np.int64)
    t0 = time.time()
    for i, im in enumerate(images):
        idx = codec.encode_array(im.permute(1, 2, 0).numpy(), cfg.blocks, gamma)
        for b in range(cfg.blocks):
            counts[b] += np.bincount(idx[b].ravel(), minlength=cfg.K)
        if progress and (i + 1) % 100 == 0:
            print(f"  {i + 1}/{len(images)} images, {time.time() - t0:.0f}s", flush=True)
    return counts


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--gamma", type=float, required=True)
    ap.add_argument("--images", type=int, default=600, help="the first N images of the training pack")
    ap.add_argument("--alpha", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--counts-out", default=None, help="also save the raw histograms (.npz)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    codec = Codec(a.model)
    if codec.prior is None:
        raise SystemExit(f"model {codec.name} has no prior to start from")
    files = list_images(a.data)[: a.images]
    t0 = time.time()
    counts = rdoq_counts(codec, load_pack(files, 16), a.gamma)
    prior = prior_from_counts(counts, a.alpha)
    ce_old = cross_entropy_bits(counts, codec.prior)
    ce_new = cross_entropy_bits(counts, prior)
    if a.counts_out:
        np.savez_compressed(a.counts_out, counts=counts)
    e = zoo.entry(codec.name)
    prior.save(zoo.WEIGHTS_DIR / e["prior"])
    reg = zoo.read_registry()
    stats = reg["models"][codec.name].setdefault("prior_stats", {})
    stats.setdefault("history", []).append({
        "rdoq_gamma": a.gamma, "images": len(files), "alpha": a.alpha,
        "bits_per_index_old_prior": round(ce_old, 4), "bits_per_index_new_prior": round(ce_new, 4)})
    stats.update({"images": len(files), "alpha": a.alpha, "rdoq_gamma": a.gamma,
                  "train_bits_per_index": round(ce_new, 4),
                  "train_codebook_usage": round(float((counts.sum(0) > 0).mean()), 4)})
    reg["models"][codec.name]["prior_stats"] = stats
    zoo.save_registry(reg)
    print(json.dumps({"model": codec.name, "gamma": a.gamma, "images": len(files),
                      "bits_per_index_old_prior": round(ce_old, 3), "bits_per_index_new_prior": round(ce_new, 3),
                      "seconds": round(time.time() - t0)}))


if __name__ == "__main__":
    main()
