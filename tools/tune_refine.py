"""Tune the encoder's decoder-checked index refinement (``Codec.refine``) of a shipped model.

Refinement swaps a block's codeword for one of its ``top`` runners-up where the decoder's
gradient, with the second-order term ``alpha * sum(curvature * delta^2)``, predicts a lower
``squared error + lambda_q * bits`` and a decode confirms it. ``alpha`` scales the GQ score's
own curvature model, so it is measured, not derived: this script encodes the last N images
of the training pack (never Kodak) at every quality refinement applies to, as real files,
with refinement off and with each ``alpha``, and picks the ``alpha`` with the lowest BD-rate
against refinement off. With ``--write`` the registry gets
``"refine": {"iters", "top", "alpha", ...}``: ``iters`` is how many iterations the encoder runs
when the caller does not ask (``--default-iters``, 0 by default: refinement is opt-in,
``gqcodec compress --refine 1``, since it costs about as much encoder time again for ~1 %
of rate; 0 also when no alpha gains); ``gqcodec compress --refine N`` uses the tuned alpha and top.

    python tools/tune_refine.py --model NAME --images 12 --alphas 700,1000,1400 [--write]

``--inherit MODEL`` skips the measurement and copies MODEL's tuned setting (marked
``inherited_from``), for a release whose parent was tuned and whose refinement stays opt-in.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from gqcodec import metrics, rd, zoo
from gqcodec.codec import Codec
from gqcodec.train import DEFAULT_DATA, list_images, load_pack


def refinable(codec: Codec) -> list[int]:
    """The qualities refinement applies to (``Codec.refine_plan``): range coded in the model's own
    codebook, with an adaptive-rate multiplier."""
    return [q for q in codec.qualities if codec.refine_plan(q, "range", 1)[0]]


def ladder_points(codec: Codec, images, qualities, iters: int) -> dict[int, tuple[float, float]]:
    """{quality: (bpp, PSNR)} over ``images`` from real files (bits and squared error pooled)."""
    bits = {q: 0.0 for q in qualities}
    se = {q: 0.0 for q in qualities}
    pixels = values = 0
    for im in images:
        rgb = np.ascontiguousarray(im.permute(1, 2, 0).numpy())
        files = codec.compress_many(rgb, qualities, refine=iters)
        for q, data in files.items():
            out = np.asarray(codec.decompress(data)).astype(np.float64)
            bits[q] += 8 * len(data)
            se[q] += float(((out - rgb) ** 2).sum())
        pixels += rgb.shape[0] * rgb.shape[1]
        values += rgb.size
    return {q: (bits[q] / pixels, metrics.psnr_from_mse(se[q] / values)) for q in qualities}


def inherit(name: str | None, source: str, write: bool) -> None:
    """Give model ``name`` (default: the default model) the refinement setting ``source`` was tuned to."""
    reg = zoo.read_registry()
    name = name or reg.get("default")
    for n in (name, source):
        if n not in reg["models"]:
            raise SystemExit(f"unknown model {n}")
    if "refine" not in reg["models"][source]:
        raise SystemExit(f"model {source} has no tuned refinement setting to inherit")
    setting = {**reg["models"][source]["refine"], "inherited_from": source}
    print(json.dumps(setting))
    if write:
        store(name, setting)


def store(name: str, setting: dict) -> None:
    """Write model ``name``'s refinement setting into the registry."""
    reg = zoo.read_registry()
    reg["models"][name]["refine"] = setting
    zoo.save_registry(reg)
    print(f"registry: {name} refine = {setting}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--images", type=int, default=12, help="the last N images of the training pack")
    ap.add_argument("--alphas", default="700,1000,1400")
    ap.add_argument("--iters", type=int, default=1, help="refinement iterations per encode while tuning")
    ap.add_argument("--default-iters", type=int, default=0,
                    help="iterations the encoder runs by default if refinement gains (0: opt-in)")
    ap.add_argument("--top", type=int, default=8, help="candidate codewords per block")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="store the chosen setting in the registry")
    ap.add_argument("--inherit", default=None, metavar="MODEL",
                    help="copy MODEL's tuned setting instead of measuring (e.g. a release's parent)")
    a = ap.parse_args(argv)
    if a.inherit:
        inherit(a.model, a.inherit, a.write)
        return
    torch.set_num_threads(a.threads)
    codec = Codec(a.model)
    if codec.prior is None:
        raise SystemExit(f"model {codec.name} has no index prior: refinement needs range coding with one")
    qs = refinable(codec)
    if len(qs) < 2:
        raise SystemExit(f"model {codec.name}: refinement applies to {len(qs)} qualities, BD-rate needs 2 or more")
    images = load_pack(list_images(a.data)[-a.images:], 16)
    method = "cubic" if len(qs) >= 4 else "pchip"
    entry = dict(codec.entry)
    t0 = time.time()
    base = ladder_points(codec, images, qs, 0)
    t_base = time.time() - t0
    print("off: " + " ".join(f"q{q} {b:.4f}/{p:.3f}" for q, (b, p) in base.items()) + f"  ({t_base:.0f} s)", flush=True)
    report = {}
    for alpha in sorted(float(x) for x in a.alphas.split(",")):
        codec.entry = {**entry, "refine": {"iters": a.iters, "top": a.top, "alpha": alpha}}
        t0 = time.time()
        pts = ladder_points(codec, images, qs, a.iters)
        report[alpha] = rd.bd_rate([b for b, _ in base.values()], [p for _, p in base.values()],
                                   [b for b, _ in pts.values()], [p for _, p in pts.values()], method=method)
        print(f"alpha {alpha:g}: " + " ".join(f"q{q} {b:.4f}/{p:.3f}" for q, (b, p) in pts.items())
              + f"  BD-rate vs off {report[alpha]:+.2f}%  ({time.time() - t0:.0f} s)", flush=True)
    codec.entry = entry
    best = min(report, key=report.get)
    setting = {"iters": a.default_iters if report[best] < 0 else 0, "top": a.top, "alpha": best,
               "tuned_iters": a.iters, "bd_rate_percent_vs_off": round(report[best], 2),
               "bd_rate_percent_by_alpha": {f"{k:g}": round(v, 2) for k, v in report.items()},
               "qualities": qs, "images": f"last {len(images)} of the training pack"}
    print(json.dumps(setting))
    if a.write:
        store(codec.name, setting)


if __name__ == "__main__":
    main()
