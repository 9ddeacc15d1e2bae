"""Temper a shipped model's index prior to the indices adaptive files really code.

The prior is measured on *dense* encodings (every position codes every block, tools/rdoq_prior.py),
but an adaptive file (the default) codes a block only where it pays for its bits: flat regions,
where RDOQ lands on a few common codewords, skip their late blocks, and the kept indices are
spread more widely than the prior expects. Re-measuring histograms on kept indices alone is noisy
(a few hundred crops for 2^16 codewords per block); tempering the well-estimated dense table,
``p_b(i) ∝ P_b(i) ** tau_b``, fits one number per block instead. Each run:

1. encodes ``--images`` training-pack crops at ``--qualities`` with the model's shipped settings
   (RDOQ, adaptive rate) as real files and collects each block's coded indices per quality;
2. picks ``tau_b`` on a grid to minimise the code length of block b's kept indices, each quality
   weighted by the inverse of its bits under the current prior (so each quality's relative saving
   counts the same, as in a BD-rate over the ladder); with ``--segments S`` (S > 1) also splits each
   block's position counts into up to S contiguous ranges with a temperature each, a count-conditioned
   prior (format v5: the decoder knows every position's count before its indices), whose first tables
   are the per-block ones (what the encoder's rate-optimised search uses);
3. with ``--write``, replaces the model's prior file by the tempered integer tables and appends the
   step to the registry's ``prior_stats.history`` (this changes the model hash: do it to a new
   model, never to a released one, and re-run the Kodak evaluation).

The crops are ``--offset``.. of the training pack (default: images 1000..1099; the prior itself was
measured on the first 600–1,400, the tuning tools use the last 32–48 and validation the last 8).

    python tools/temper_prior.py --model gq-n128-c320-r12 --images 100 --write
    python tools/temper_prior.py --model NAME --from-json fit.json --write   # an earlier run's fit
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import bitstream
from bitstream import Prior
from gqcodec import zoo
from gqcodec.codec import Codec
from gqcodec.train import DEFAULT_DATA, list_images, load_pack

TAUS = np.round(np.arange(0.40, 1.2001, 0.02), 2)


def kept_indices(codec: Codec, images, qualities, with_counts: bool = False) -> dict[int, list]:
    """``{quality: [block 0's coded indices, block 1's, ...]}`` over real files of ``images``
    (only indices below the prior's K: a wide codebook's escaped ones are not the prior's); with
    ``with_counts`` each block's entry is ``(indices, the block counts of their positions)``."""
    found = {q: [([], []) for _ in range(codec.n_blocks(q))] for q in qualities}  # per block: indices, counts
    for im in images:
        for q, data in codec.compress_many(im, qualities).items():  # the qualities share their search and decodes
            _, idx = bitstream.unpack(data, prior=codec.prior)
            counts = (idx >= 0).sum(axis=0)
            for b in range(idx.shape[0]):
                v, c = idx[b][idx[b] >= 0], counts[idx[b] >= 0]
                narrow = v < codec.prior.K
                found[q][b][0].append(v[narrow])
                found[q][b][1].append(c[narrow])
    out = {q: [(np.concatenate(v), np.concatenate(c)) for v, c in blocks] for q, blocks in found.items()}
    return out if with_counts else {q: [v for v, _ in blocks] for q, blocks in out.items()}


def tempered_logp(logp: np.ndarray, tau: float) -> np.ndarray:
    """log2 of ``p ** tau`` renormalised, for one table's log2 probabilities ``logp``."""
    x = logp * tau
    return x - np.logaddexp2.reduce(x)


def fit_taus(prior: Prior, kept: dict[int, list[np.ndarray]], taus=TAUS) -> tuple[np.ndarray, dict]:
    """Per block of the prior, the grid ``tau`` minimising the quality-weighted code length of its
    kept indices (blocks no quality codes keep 1.0); and per quality the bits per kept index
    before and after."""
    logw = np.log2(prior.weights().astype(np.float64))
    logp = logw - np.log2(float(1 << bitstream.prior.PRECISION))
    nb = prior.T
    base = {q: sum(-logp[min(b, nb - 1)][v].sum() for b, v in enumerate(vs)) for q, vs in kept.items()}
    best = np.ones(nb)
    for b in range(nb):
        samples = [(q, vs[b]) for q, vs in kept.items() if b < len(vs) and vs[b].size]
        if not samples:
            continue
        cost = [sum(-tempered_logp(logp[b], t)[v].sum() / base[q] for q, v in samples) for t in taus]
        best[b] = float(taus[int(np.argmin(cost))])
    report = {}
    for q, vs in kept.items():
        n = sum(v.size for v in vs)
        after = sum(-tempered_logp(logp[min(b, nb - 1)], best[min(b, nb - 1)])[v].sum() for b, v in enumerate(vs))
        report[q] = {"indices": int(n), "bits_per_index_old": round(base[q] / max(n, 1), 4),
                     "bits_per_index_new": round(after / max(n, 1), 4)}
    return best, report


def fit_segments(prior: Prior, kept: dict[int, list[tuple[np.ndarray, np.ndarray]]], segments: int,
                 taus=TAUS) -> tuple[np.ndarray, list[list[tuple[int, int, float]]], dict]:
    """Count-conditioned tempering: per block b, the counts c = b+1..B of its positions are split into
    at most ``segments`` contiguous ranges, each with its own grid ``tau`` (dynamic programming over
    the ranges, the same quality-weighted code length as :func:`fit_taus`). Returns the per-block
    taus of :func:`fit_taus` (each block's representative table), per block its ``(c_lo, c_hi, tau)``
    ranges, and per quality the bits per kept index before and after."""
    plain = {q: [v for v, _ in vs] for q, vs in kept.items()}
    block_taus, _ = fit_taus(prior, plain, taus)
    logw = np.log2(prior.weights().astype(np.float64))
    logp = logw - np.log2(float(1 << bitstream.prior.PRECISION))
    nb = prior.T
    base = {q: sum(-logp[min(b, nb - 1)][v].sum() for b, (v, _) in enumerate(vs)) for q, vs in kept.items()}
    ranges = []
    for b in range(nb):
        tables = [tempered_logp(logp[b], t) for t in taus]
        C = nb  # counts b+1..nb
        cost = np.zeros((C + 1, len(taus)))  # cost[c, j]: weighted bits of block b's indices at count c under taus[j]
        for q, vs in kept.items():
            if b >= len(vs) or not vs[b][0].size:
                continue
            v, c = vs[b]
            lp = np.stack([tab[v] for tab in tables])  # (taus, samples)
            for cc in np.unique(c):
                cost[cc] -= lp[:, c == cc].sum(axis=1) / base[q]
        cells = list(range(b + 1, C + 1))
        if not cost[b + 1:].any():
            ranges.append([(b + 1, C, 1.0)])
            continue
        # best[k][i]: least cost of cells[:i] in k ranges; seg(i, j): cells[i:j] under their best tau
        pref = np.concatenate([np.zeros((1, len(taus))), np.cumsum(cost[b + 1:], axis=0)])
        seg = lambda i, j: (pref[j] - pref[i]).min()  # noqa: E731
        n = len(cells)
        best = np.full((segments + 1, n + 1), np.inf)
        arg = np.zeros((segments + 1, n + 1), dtype=int)
        best[0][0] = 0.0
        for k in range(1, segments + 1):
            for j in range(1, n + 1):
                for i in range(k - 1, j):
                    v = best[k - 1][i] + seg(i, j)
                    if v < best[k][j] - 1e-12:
                        best[k][j], arg[k][j] = v, i
        k = int(np.argmin(best[:, n]))
        out, j = [], n
        while k > 0:
            i = arg[k][j]
            t = float(taus[int(np.argmin(pref[j] - pref[i]))])
            out.append((cells[i], cells[j - 1], t))
            j, k = i, k - 1
        ranges.append(out[::-1])
    report = {}
    for q, vs in kept.items():
        n_idx, bits = 0, 0.0
        for b, (v, c) in enumerate(vs):
            n_idx += v.size
            for lo, hi, t in ranges[min(b, nb - 1)]:
                sel = (c >= lo) & (c <= hi)
                bits -= tempered_logp(logp[min(b, nb - 1)], t)[v[sel]].sum()
        report[q] = {"indices": int(n_idx), "bits_per_index_old": round(base[q] / max(n_idx, 1), 4),
                     "bits_per_index_new": round(bits / max(n_idx, 1), 4)}
    return block_taus, ranges, report


def conditioned_prior(prior: Prior, block_taus, ranges) -> Prior:
    """The count-conditioned prior of a :func:`fit_segments` result: tables 0..B-1 are the blocks'
    representative tables (``p_b ** block_taus[b]``), then one table per range whose tau differs from its
    block's; ``select[b, c]`` names the table of block b's range holding count c."""
    logp = np.log2(prior.weights().astype(np.float64))
    nb = prior.T
    rows = list(tempered_prior(prior, np.asarray(block_taus, dtype=np.float64)).freqs)
    select = np.zeros((nb, nb + 1), dtype=np.int64)
    for b in range(nb):
        select[b, :] = b
        for lo, hi, t in ranges[b]:
            if t != block_taus[b]:
                rows.append(np.maximum(np.rint(np.exp2(tempered_logp(logp[b], t)) * float(1 << bitstream.prior.PRECISION)), 1)
                            if t != 1.0 else np.asarray(prior.freqs[b], dtype=np.float64))
                select[b, lo:hi + 1] = len(rows) - 1
    return Prior(np.stack(rows).astype(np.uint32), select)


def tempered_prior(prior: Prior, taus: np.ndarray) -> Prior:
    """The integer tables of ``p_b ** tau_b`` (rescaled to 2**24, every entry at least 1); a block
    with ``tau_b`` = 1 keeps its table exactly."""
    logp = np.log2(prior.weights().astype(np.float64))
    rows = []
    for b in range(prior.T):
        if taus[b] == 1.0:
            rows.append(np.asarray(prior.freqs[b], dtype=np.float64))
        else:
            rows.append(np.maximum(np.rint(np.exp2(tempered_logp(logp[b], taus[b])) * float(1 << bitstream.prior.PRECISION)), 1))
    return Prior(np.stack(rows).astype(np.uint32))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--offset", type=int, default=1000, help="first training-pack image to use")
    ap.add_argument("--qualities", default="1,2,3,4,5,6,7")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--segments", type=int, default=1,
                    help="> 1: a count-conditioned prior (format v5): per block up to this many ranges of position "
                         "counts, each with its own temperature (docs/design.md, 'Index prior')")
    ap.add_argument("--write", action="store_true", help="replace the model's prior file and record the step")
    ap.add_argument("--from-json", default=None,
                    help="take the fit (taus, crops, per-quality bits) from an earlier run's printed JSON instead of "
                         "encoding again; it must have been measured on this model's current prior")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    codec = Codec(a.model)
    if codec.prior is None:
        raise SystemExit(f"model {codec.name} has no prior to temper")
    if a.from_json:
        out = json.loads(Path(a.from_json).read_text())
        if out.get("prior_id") != codec.prior.prior_id.hex():
            raise SystemExit(f"{a.from_json} was measured on prior {out.get('prior_id')}, "
                             f"not on {codec.name}'s {codec.prior.prior_id.hex()}")
    else:
        files = list_images(a.data)[a.offset:a.offset + a.images]
        if not files:
            raise SystemExit(f"no training images at {a.offset}.. of {a.data}")
        images = [im.permute(1, 2, 0).numpy() for im in load_pack(files, 16)]  # uint8 H x W x 3
        qualities = [int(q) for q in a.qualities.split(",")]
        t0 = time.time()
        if a.segments > 1:
            kept = kept_indices(codec, images, qualities, with_counts=True)
            taus, ranges, report = fit_segments(codec.prior, kept, a.segments)
        else:
            taus, report = fit_taus(codec.prior, kept_indices(codec, images, qualities))
            ranges = None
        out = {"model": codec.name, "prior_id": codec.prior.prior_id.hex(), "images": len(files), "offset": a.offset,
               "qualities": qualities, "taus": [float(t) for t in taus], "per_quality": report,
               "seconds": round(time.time() - t0)}
        if ranges is not None:
            out["ranges"] = [[[int(lo), int(hi), float(t)] for lo, hi, t in r] for r in ranges]
    print(json.dumps(out, indent=1))
    if a.write:
        if codec.prior.conditional:
            raise SystemExit(f"{codec.name}'s prior is count-conditioned already; temper its parent's plain prior")
        if out.get("ranges"):
            new = conditioned_prior(codec.prior, out["taus"], [[tuple(x) for x in r] for r in out["ranges"]])
        else:
            new = tempered_prior(codec.prior, np.asarray(out["taus"]))
        new.save(zoo.WEIGHTS_DIR / codec.entry["prior"])
        reg = zoo.read_registry()
        stats = reg["models"][codec.name].setdefault("prior_stats", {})
        stats.setdefault("history", []).append({
            "tempered": out["taus"], **({"count_ranges": out["ranges"]} if out.get("ranges") else {}),
            "images": out["images"], "offset": out["offset"], "qualities": out["qualities"],
            "kept_bits_per_index": {q: [r["bits_per_index_old"], r["bits_per_index_new"]]
                                    for q, r in out["per_quality"].items()}})
        zoo.save_registry(reg)


if __name__ == "__main__":
    main()
