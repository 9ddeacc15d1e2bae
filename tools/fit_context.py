"""Fit block 0's spatial context model (format v6) to a model's real files and add it to its prior.

A position's block-0 codeword is predicted linearly from the block-0 codewords of six decoded
neighbours (``bitstream.context.NEIGHBOURS``), and the block's histogram is tilted towards the
prediction (docs/design.md, "Block 0's spatial context"). Each run:

1. encodes ``--images`` training-pack crops (from ``--offset``) at ``--qualities`` with the model's
   shipped settings as real files and collects each file's block-0 index map;
2. fits the prediction by ridge regression on the first 80 % of the crops (on the quantised
   codewords the integer model sees), with the residual variance ``S`` and the codewords' second
   moment ``V`` per dimension;
3. picks the tilt's strength ``tau`` on the other 20 % by the exact code length of the integer
   model (``SpatialContext.code_lengths``), and reports bits per block-0 index against the
   histogram alone;
4. with ``--write``, stores the model in the prior file (which changes the prior's hash, so the
   model hash: do it to a new model, never to a released one) and records the fit in the registry's
   ``prior_stats.history``. Files of the model are then version 6.

    python tools/fit_context.py --model NAME --images 150 --write
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

import bitstream
from bitstream import Prior
from bitstream.context import QSCALE, T_SHIFT, SpatialContext, neighbour_features, qcodebook, qcodebook_sha
from gqcodec import zoo
from gqcodec.codec import Codec
from gqcodec.train import DEFAULT_DATA, list_images, load_pack

TAUS = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3)  # -r14 picked 1.0, the top of an earlier grid (0.6-1.0)
FRAC = 16  # logits in 2**-16 bits


def block0_maps(codec: Codec, images, qualities) -> list[np.ndarray]:
    """Block-0 index maps (h, w; -1 where a position codes no block) of real files of ``images``."""
    maps = []
    for im in images:
        for data in codec.compress_many(im, qualities).values():
            h, idx = bitstream.unpack(data, prior=codec.prior)
            if h.ext_bits:
                continue  # wide files keep the older coding
            maps.append(idx[0])
    return maps


def design(maps, q: np.ndarray):
    """(features (N, 6m) int64, targets (N,) int64) of every coded position of ``maps``."""
    X, t = [], []
    for mp in maps:
        ys, xs = np.nonzero(mp >= 0)
        X.append(neighbour_features(q, mp, ys, xs))
        t.append(mp[ys, xs])
    return np.concatenate(X), np.concatenate(t)


def integer_model(W: np.ndarray, b: np.ndarray, S: np.ndarray, V: np.ndarray, logh: np.ndarray, q: np.ndarray,
                  tau: float, seed: int, m: int, qsha: str) -> SpatialContext:
    """The integer arrays of the tilt with real-valued prediction ``mu = W.T @ (x / 32) + b``."""
    k = tau / math.log(2)
    G = np.rint(2.0 ** (FRAC + T_SHIFT) * k * W / (QSCALE * QSCALE * S[None])).astype(np.int64)
    g0 = np.rint(2.0 ** (FRAC + T_SHIFT) * k * b / (QSCALE * S)).astype(np.int64)
    c = q / QSCALE
    base = np.rint(2.0 ** FRAC * (logh + k * (c ** 2 * (1 / V - 1 / S)).sum(1) / 2)).astype(np.int64)
    return SpatialContext(seed, m, G, g0, base, qsha)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--images", type=int, default=150)
    ap.add_argument("--offset", type=int, default=1000, help="first training-pack image to use")
    ap.add_argument("--qualities", default="1,4,7")
    ap.add_argument("--ridge", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write", action="store_true", help="store the model in the prior file and record the fit")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    codec = Codec(a.model)
    prior = codec.prior
    if prior is None:
        raise SystemExit(f"model {codec.name} has no index prior")
    if prior.context is not None:
        raise SystemExit(f"{codec.name}'s prior has a context model already")
    cfg = codec.model.config
    files = list_images(a.data)[a.offset:a.offset + a.images]
    if len(files) < 5:
        raise SystemExit(f"need at least 5 training images at {a.offset}.. of {a.data}")
    t0 = time.time()
    images = [im.permute(1, 2, 0).numpy() for im in load_pack(files, 16)]
    qualities = [int(x) for x in a.qualities.split(",")]
    cut = int(0.8 * len(images))
    fit_maps = block0_maps(codec, images[:cut], qualities)
    val_maps = block0_maps(codec, images[cut:], qualities)
    q = qcodebook(cfg.seed, prior.K, cfg.m)
    X, t = design(fit_maps, q)
    Xr = np.concatenate([X / QSCALE, np.ones((len(X), 1))], 1)
    Y = q[t] / QSCALE
    Wb = np.linalg.solve(Xr.T @ Xr + a.ridge * np.eye(Xr.shape[1]), Xr.T @ Y)
    R = Y - Xr @ Wb
    S, V = R.var(0), (Y ** 2).mean(0)
    w0 = prior.weights()[prior.table_index(0)].astype(np.float64)
    logh = np.log2(w0 / w0.sum())
    qsha = qcodebook_sha(cfg.seed, prior.K, cfg.m)
    n_val = sum(int((mp >= 0).sum()) for mp in val_maps)
    hist = -sum(logh[mp[mp >= 0]].sum() for mp in val_maps) / n_val
    results = {}
    for tau in TAUS:
        ctx = integer_model(Wb[:-1], Wb[-1], S, V, logh, q, tau, cfg.seed, cfg.m, qsha)
        results[tau] = (sum(ctx.code_lengths(mp, mp >= 0).sum() for mp in val_maps) / n_val, ctx)
    best = min(results, key=lambda k: results[k][0])
    out = {"model": codec.name, "prior_id": prior.prior_id.hex(), "images": len(files), "offset": a.offset,
           "qualities": qualities, "fit_positions": int(len(t)), "val_positions": n_val,
           "r2_fit": float(1 - R.var(0).sum() / Y.var(0).sum()),
           "bits_per_index_hist": round(float(hist), 4),
           "bits_per_index_ctx": {str(k): round(float(v[0]), 4) for k, v in results.items()},
           "tau": best, "seconds": round(time.time() - t0)}
    print(json.dumps(out, indent=1))
    if a.write:
        if results[best][0] >= hist:
            raise SystemExit("the context model does not beat the histogram on the held-back crops; not written")
        new = Prior(prior.freqs, prior.select, results[best][1])
        new.save(zoo.WEIGHTS_DIR / codec.entry["prior"])
        reg = zoo.read_registry()
        stats = reg["models"][codec.name].setdefault("prior_stats", {})
        stats.setdefault("history", []).append({
            "block0_context": {"tau": best, "ridge": a.ridge, "images": out["images"], "offset": a.offset,
                               "qualities": qualities, "bits_per_index": [out["bits_per_index_hist"],
                                                                          out["bits_per_index_ctx"][str(best)]]}})
        zoo.save_registry(reg)


if __name__ == "__main__":
    main()
