"""Tune the rate-distortion optimised quantization strength of a shipped model.

For each candidate strength ``gamma`` the quantizer picks, per block, the codeword
maximising ``GQ score + gamma * ln P(index)`` under the model's index prior.  This
script encodes training-pack images (never Kodak, the evaluation set) at every
quality of the ladder, measures the code length under the prior and the PSNR of
the decoded image, and reports the BD-rate of each strength against gamma = 0.

    python tools/tune_rdoq.py --images 32 --gammas 0,0.5,1,1.5,2,3,4 [--write]

``--write`` stores the chosen strength as the registry's ``rdoq`` field: the smallest
gamma whose BD-rate is within ``--tolerance`` percentage points of the best one. A
larger gamma also lowers the top quality's rate *and* PSNR (the ladder's top moves
down), so a gain of a few tenths of a percent is not worth it. The top quality is the
ladder's "best the model can do", so it gets its own strength (``rdoq_by_quality``): the
one with the lowest rate whose PSNR stays within ``--top-psnr-loss`` dB of the plain search.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from gqcodec import rd, zoo
from gqcodec.codec import Codec
from gqcodec.metrics import psnr_rgb
from gqcodec.train import DEFAULT_DATA, list_images, load_pack


def measure(codec: Codec, images, gammas) -> dict:
    """{gamma: {quality: (bpp, psnr)}} averaged over images (bpp pooled over pixels)."""
    B = codec.model.config.blocks
    out = {}
    for g in gammas:
        bits = {q: 0.0 for q in codec.ladder}
        psnrs = {q: [] for q in codec.ladder}
        pixels = 0
        for im in images:
            rgb = im.permute(1, 2, 0).numpy()
            h, w = rgb.shape[:2]
            idx = codec.encode_array(rgb, B, g)
            for q, n in codec.ladder.items():
                bits[q] += codec.prior.bits(idx[:n])  # the range coder's code lengths
                psnrs[q].append(psnr_rgb(rgb, codec.decode_array(idx[:n], h, w)))
            pixels += h * w
        out[g] = {q: (bits[q] / pixels, float(np.mean(psnrs[q]))) for q in sorted(codec.ladder)}
        print(f"gamma {g:g}: " + " ".join(f"q{q} {b:.3f}/{p:.2f}" for q, (b, p) in out[g].items()), flush=True)
    return out


def choose(report: dict[float, float], tolerance: float) -> float:
    """The smallest strength whose BD-rate is within ``tolerance`` points of the best."""
    best = min(report.values())
    return min(g for g, bd in report.items() if bd <= best + tolerance)


def choose_top(res: dict, quality: int, max_loss: float) -> float:
    """The strength with the lowest rate at ``quality`` whose PSNR is within ``max_loss`` dB of gamma 0."""
    ref = res[0.0][quality][1]
    ok = [g for g in res if res[g][quality][1] >= ref - max_loss]
    return min(ok, key=lambda g: res[g][quality][0])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--images", type=int, default=32, help="the last N images of the training pack")
    ap.add_argument("--gammas", default="0,0.5,1,1.5,2,3,4")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tolerance", type=float, default=0.5,
                    help="pick the smallest gamma within this many BD-rate points of the best")
    ap.add_argument("--top-psnr-loss", type=float, default=0.15,
                    help="dB of PSNR the top quality may lose to the plain search")
    ap.add_argument("--write", action="store_true", help="store the chosen strengths in the registry")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    codec = Codec(a.model)
    files = list_images(a.data)[-a.images:]
    images = load_pack(files, 16)
    gammas = sorted({0.0, *(float(g) for g in a.gammas.split(","))})
    if a.write and codec.wide_bits:
        raise SystemExit(f"{codec.name}'s top qualities search wider codebooks (tools/tune_wide.py), whose RDOQ "
                         "strengths --write would replace: measure without --write and set 'rdoq' by hand, or tune "
                         "before tools/tune_wide.py as tools/release.sh does")
    res = measure(codec, images, gammas)
    ref = res[0.0]
    # one point per block count: qualities that differ only in settings tune_wide adds (8-10) code the same here
    distinct = [q for q in sorted(codec.ladder) if all(codec.ladder[p] != codec.ladder[q] for p in codec.ladder if p < q)]
    report = {}
    for g in gammas:
        pts = res[g]
        bd = rd.bd_rate([ref[q][0] for q in distinct], [ref[q][1] for q in distinct],
                        [pts[q][0] for q in distinct], [pts[q][1] for q in distinct],
                        method="cubic" if len(distinct) >= 4 else "pchip")  # cubic needs 4 points
        report[g] = bd
        print(f"gamma {g:g}: BD-rate vs plain search {bd:+.2f}%")
    best = choose(report, a.tolerance)
    print(json.dumps({"chosen_gamma": best, "bd_rate_percent": round(report[best], 2),
                      "best_bd_rate_percent": round(min(report.values()), 2), "images": len(images)}))
    top_q = max(codec.ladder)
    top = choose_top(res, top_q, a.top_psnr_loss)
    print(json.dumps({"top_quality": top_q, "top_gamma": top, "bpp_psnr": res[top][top_q]}))
    if a.write:
        reg = zoo.read_registry()
        reg["models"][codec.name]["rdoq"] = best
        reg["models"][codec.name]["rdoq_by_quality"] = {str(top_q): top}
        reg["models"][codec.name]["rdoq_selection"] = {
            "images": f"last {len(images)} of the training pack",
            "rule": f"smallest gamma within {a.tolerance:g} BD-rate points of the best",
            "bd_rate_percent_vs_plain": {f"{g:g}": round(v, 2) for g, v in report.items()},
            "top_quality": {"rule": f"lowest rate within {a.top_psnr_loss:g} dB PSNR of the plain search",
                            f"q{top_q}_bpp_psnr_by_gamma": {
                                f"{g:g}": [round(res[g][top_q][0], 4), round(res[g][top_q][1], 3)] for g in gammas}}}
        zoo.save_registry(reg)
        print(f"{codec.name}: rdoq = {best:g} written to {zoo.REGISTRY_FILE}")


if __name__ == "__main__":
    main()
