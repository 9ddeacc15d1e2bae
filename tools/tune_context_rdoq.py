"""Tune how strongly RDOQ prices block 0 under the prior's spatial context model.

Format v6 codes block 0 with a distribution conditioned on six already-coded neighbours
(bitstream.context). The encoder can search block 0 under that model instead of the block's
histogram: positions in wavefront order, each picking the codeword maximising
``GQ score + s * gamma_q * ln p(index | neighbours)`` (``Codec._context_search``), with gamma_q
the quality's RDOQ strength and ``s`` the scale tuned here. This script encodes the last N
training-pack images (never Kodak) as real files at the ladder's narrow qualities for each scale
(0: block 0 under its histogram, as before), decodes them, and reports the BD-rate of each scale
against 0 from the files' bytes and PSNR.

    python tools/tune_context_rdoq.py --images 12 --scales 0,0.5,0.75,1 [--write]
    python tools/tune_context_rdoq.py --inherit gq-n128-c320-r15 --write   # copy a parent's scale

``--write`` stores the best scale (0 when none beats the histogram by ``--min-gain`` points) as
the registry's ``context_rdoq`` for the model.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from PIL import Image

from gqcodec import rd, zoo
from gqcodec.codec import Codec
from gqcodec.metrics import psnr_rgb
from gqcodec.train import DEFAULT_DATA, list_images


def narrow_qualities(codec: Codec) -> list[int]:
    """Qualities coding in the model's own codebook with RDOQ on: those the scale acts on."""
    return [q for q in codec.qualities
            if codec.index_bits(q) == codec.model.config.K_bits and codec.rdoq_for(q) > 0]


def measure(codec: Codec, files, scales, qualities) -> dict:
    """{scale: {quality: (bpp, mean psnr)}} of real files (bytes pooled over pixels)."""
    pics = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    pixels = sum(p.shape[0] * p.shape[1] for p in pics)
    out = {}
    for s in scales:
        codec.context_rdoq_scale = s
        size = {q: 0 for q in qualities}
        psnr = {q: [] for q in qualities}
        for pic in pics:
            for q, data in codec.compress_many(pic, qualities).items():
                size[q] += len(data)
                psnr[q].append(psnr_rgb(pic, np.asarray(codec.decompress(data))))
        out[s] = {q: (8 * size[q] / pixels, float(np.mean(psnr[q]))) for q in qualities}
        print(f"scale {s:g}: " + " ".join(f"q{q} {b:.4f}/{p:.3f}" for q, (b, p) in out[s].items()), flush=True)
    return out


def bd_report(res: dict, qualities) -> dict:
    ref = res[0.0]
    method = "cubic" if len(qualities) >= 4 else "pchip"
    return {s: rd.bd_rate([ref[q][0] for q in qualities], [ref[q][1] for q in qualities],
                          [pts[q][0] for q in qualities], [pts[q][1] for q in qualities], method=method)
            for s, pts in res.items()}


def choose(report: dict, min_gain: float) -> float:
    """The scale with the lowest BD-rate, or 0 when it does not beat 0 by ``min_gain`` points."""
    best = min(report, key=report.get)
    return best if report[best] <= -min_gain else 0.0


def store(name: str, setting: dict) -> None:
    reg = zoo.read_registry()
    reg["models"][name]["context_rdoq"] = setting
    zoo.save_registry(reg)
    print(f"{name}: context_rdoq = {json.dumps(setting)} written to {zoo.REGISTRY_FILE}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--images", type=int, default=12, help="the last N images of the training pack")
    ap.add_argument("--scales", default="0,0.5,0.75,1")
    ap.add_argument("--qualities", default=None, help="comma-separated (default: every narrow quality)")
    ap.add_argument("--min-gain", type=float, default=0.1, help="BD-rate points a scale must win by")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--inherit", default=None, metavar="MODEL", help="copy MODEL's tuned scale instead of measuring")
    ap.add_argument("--write", action="store_true", help="store the chosen scale in the registry")
    a = ap.parse_args(argv)
    reg = zoo.read_registry()
    name = a.model or reg.get("default")
    if a.inherit:
        for n in (name, a.inherit):
            if n not in reg["models"]:
                raise SystemExit(f"unknown model {n}")
        if "context_rdoq" not in reg["models"][a.inherit]:
            raise SystemExit(f"model {a.inherit} has no tuned context_rdoq to inherit")
        setting = {"scale": reg["models"][a.inherit]["context_rdoq"]["scale"], "inherited_from": a.inherit}
        print(json.dumps(setting))
        if a.write:
            store(name, setting)
        return
    torch.set_num_threads(a.threads)
    codec = Codec(name)
    if codec.prior is None or codec.prior.context is None:
        raise SystemExit(f"model {codec.name}'s prior has no block-0 context model (tools/fit_context.py first)")
    qualities = [int(q) for q in a.qualities.split(",")] if a.qualities else narrow_qualities(codec)
    if len(qualities) < 2:
        raise SystemExit("need at least two qualities for a BD-rate")
    scales = sorted({0.0, *(float(s) for s in a.scales.split(","))})
    files = list_images(a.data)[-a.images:]
    res = measure(codec, files, scales, qualities)
    report = bd_report(res, qualities)
    for s, bd in report.items():
        print(f"scale {s:g}: BD-rate vs histogram search {bd:+.2f}%")
    best = choose(report, a.min_gain)
    setting = {"scale": best, "images": f"last {len(files)} of the training pack", "qualities": qualities,
               "bd_rate_percent_vs_histogram": {f"{s:g}": round(v, 2) for s, v in report.items()}}
    print(json.dumps(setting))
    if a.write:
        store(codec.name, setting)


if __name__ == "__main__":
    main()
