"""Tune the spatially adaptive rate of a shipped model: one multiplier lambda per quality.

With adaptive rate (format v2's prefix layout) quality q allows up to n(q) blocks per
latent position and the encoder keeps, at each position, the number of leading blocks
minimising ``SE + lambda_q * bits`` (``Codec.pick_counts``). This script sets

    lambda_q = k * slope_q,   slope_q = sum(SE(n(q-1)) - SE(n(q))) / sum(bits(n(q)) - bits(n(q-1)))

the average distortion-per-bit slope of the dense ladder at quality q (n(0) = n(1) - 1),
measured on training-pack images (never Kodak), and picks the smallest factor ``k`` whose
ladder's BD-rate against the dense ladder on the same images is within ``--tolerance``
points of the best (a larger k moves the whole ladder to lower rates).  The top quality is the
ladder's "best the model can do", so it gets its own factor: the one with the lowest rate
whose PSNR is not below the dense top's (adaptive rate also drops blocks that hurt).  The estimate adds the
per-patch errors of whole-image decodes with c blocks everywhere (the decoder mixes
neighbouring positions a little), so it is a guide; Kodak numbers come from real files.

    python tools/tune_adaptive.py --images 32 --factors 0.125,0.25,0.5,1,2,4 [--write]
"""
from __future__ import annotations

import argparse
import json
import math

import numpy as np
import torch

from bitstream import countmap
from gqcodec import rd, zoo
from gqcodec.codec import Codec
from gqcodec.train import DEFAULT_DATA, list_images, load_pack


def costs(codec: Codec, images) -> dict:
    """{quality: [(se, bits) per image]} with ``Codec.count_costs`` arrays (n(q) + 1, h, w).

    The search is per block, so the first n indices of an n-block encoding equal those of a
    deeper one with the same RDOQ strength: one encoding (and its decodes) per strength
    serves every quality that uses it.
    """
    out = {q: [] for q in codec.qualities}
    by_gamma: dict[float, list[int]] = {}
    for q in codec.qualities:
        by_gamma.setdefault(codec.rdoq_for(q), []).append(q)
    for i, im in enumerate(images):
        rgb = im.permute(1, 2, 0).numpy()
        for g, qs in by_gamma.items():
            n = max(codec.ladder[q] for q in qs)
            se, bits = codec.count_costs(rgb, codec.encode_array(rgb, n, g))
            for q in qs:
                out[q].append((se[:codec.ladder[q] + 1], bits[:codec.ladder[q] + 1]))
        print(f"  {i + 1}/{len(images)} images", flush=True)
    return out


def slope(pairs, n_lo: int, n_hi: int) -> float:
    """Average squared error saved per bit going from n_lo to n_hi blocks everywhere."""
    d_se = sum(float(se[n_lo].sum() - se[n_hi].sum()) for se, _ in pairs)
    d_bits = sum(float(bits[n_hi].sum() - bits[n_lo].sum()) for _, bits in pairs)
    return max(d_se, 0.0) / max(d_bits, 1e-9)


def point(pairs, lam: float | None) -> tuple[float, float]:
    """(bpp pooled over pixels, mean PSNR) of the dense ladder point (lam None) or the adaptive choice."""
    bits_total, pixels, psnrs = 0.0, 0, []
    for se, bits in pairs:
        n = se.shape[0] - 1
        px = se.shape[1] * se.shape[2] * 256
        if lam is None:
            b, e = float(bits[n].sum()), float(se[n].sum())
        else:
            counts = Codec.pick_counts(se, bits, lam)
            b = float(np.take_along_axis(bits, counts[None], 0).sum())
            b += float(countmap.code_lengths(counts, n).sum())  # the v5 map (context coded, no table)
            e = float(np.take_along_axis(se, counts[None], 0).sum())
        bits_total += b
        pixels += px
        psnrs.append(10 * math.log10(255.0**2 / max(e / (3 * px), 1e-12)))
    return bits_total / pixels, float(np.mean(psnrs))


def choose_factor(report: dict[float, float], tolerance: float) -> float:
    """The smallest factor whose BD-rate is within ``tolerance`` points of the best."""
    best = min(report.values())
    return min(k for k, v in report.items() if v <= best + tolerance)


def choose_top_factor(ladders: dict, dense_top: tuple[float, float], top: int, fallback: float) -> float:
    """The factor with the lowest rate at the top quality whose PSNR is not below the dense top's."""
    ok = [k for k in ladders if ladders[k][top][1] >= dense_top[1]]
    return min(ok, key=lambda k: ladders[k][top][0]) if ok else fallback


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--images", type=int, default=32, help="the last N images of the training pack")
    ap.add_argument("--factors", default="0.125,0.25,0.5,1,2,4")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tolerance", type=float, default=0.5,
                    help="pick the smallest factor within this many BD-rate points of the best")
    ap.add_argument("--write", action="store_true", help="store the chosen multipliers in the registry")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    codec = Codec(a.model)
    if codec.prior is None:
        raise SystemExit(f"model {codec.name} has no index prior: adaptive rate needs range coding with one")
    images = load_pack(list_images(a.data)[-a.images:], 16)
    res = costs(codec, images)
    qs = codec.qualities
    slopes = {}
    for i, q in enumerate(qs):
        n_lo = codec.ladder[qs[i - 1]] if i else codec.ladder[q] - 1
        slopes[q] = slope(res[q], n_lo, codec.ladder[q])
    dense = {q: point(res[q], None) for q in qs}
    print("dense: " + " ".join(f"q{q} {b:.3f}/{p:.2f}" for q, (b, p) in dense.items()))
    print("slopes: " + " ".join(f"q{q} {s:.1f}" for q, s in slopes.items()))
    method = "cubic" if len(qs) >= 4 else "pchip"  # cubic BD needs 4 points per curve
    ladders, report = {}, {}
    for k in sorted(float(f) for f in a.factors.split(",")):
        pts = {q: point(res[q], k * slopes[q]) for q in qs}
        ladders[k] = pts
        report[k] = rd.bd_rate([b for b, _ in dense.values()], [p for _, p in dense.values()],
                               [b for b, _ in pts.values()], [p for _, p in pts.values()], method=method)
        print(f"k {k:g}: " + " ".join(f"q{q} {b:.3f}/{p:.2f}" for q, (b, p) in pts.items())
              + f"  BD-rate vs dense {report[k]:+.2f}%", flush=True)
    best = choose_factor(report, a.tolerance)
    top = qs[-1]
    top_k = choose_top_factor(ladders, dense[top], top, best)
    factors = {q: (top_k if q == top else best) for q in qs}
    lams = {q: round(factors[q] * slopes[q], 3) for q in qs}
    print(json.dumps({"chosen_factor": best, "top_factor": top_k, "bd_rate_percent_vs_dense": round(report[best], 2),
                      "adaptive_lambda": lams, "images": len(images)}))
    if a.write:
        reg = zoo.read_registry()
        e = reg["models"][codec.name]
        e["adaptive_lambda"] = {str(q): v for q, v in lams.items()}
        e["adaptive_selection"] = {
            "images": f"last {len(images)} of the training pack",
            "rule": f"lambda_q = k * (dense ladder's squared error saved per bit at q); the smallest k within "
                    f"{a.tolerance:g} points of the best estimated BD-rate against the dense ladder; the top quality: the k with the lowest rate "
                    "whose PSNR is not below the dense top's",
            "factor": best, "top_factor": top_k,
            "slopes": {str(q): round(s, 3) for q, s in slopes.items()},
            "bd_rate_percent_vs_dense_by_factor": {f"{k:g}": round(v, 2) for k, v in report.items()},
            "estimated_bpp_psnr": {"dense": {str(q): [round(b, 4), round(p, 3)] for q, (b, p) in dense.items()},
                                   "adaptive": {str(q): [round(b, 4), round(p, 3)]
                                                for q, (b, p) in ((q, ladders[factors[q]][q]) for q in qs)}}}
        zoo.save_registry(reg)
        print(f"{codec.name}: adaptive_lambda written to {zoo.REGISTRY_FILE}")


if __name__ == "__main__":
    main()
