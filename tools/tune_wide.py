"""Measure (and optionally ship) the wide-codebook top of a model's ladder.

Qualities at the top of the ladder may search a codebook wider than the model's (2**K_bits rows,
format v3 escape coding, docs/design.md "Wider codebooks at the top of the ladder"). This script
writes real files for each candidate setting ``K_bits,rdoq,lambda`` at the model's full block
count on training-pack images (never Kodak; by default images [-24:-8], the 8 training holds back
excluded) and prints bpp / PSNR-RGB / the share of escaped indices, next to the narrow ladder's
top for reference. With ``--write QUALITY=K_bits,rdoq,lambda ...`` the chosen settings become
those qualities of the registry entry (the ladder is extended where needed); each one's
``escape_share`` (the RDOQ search's guess of the share of narrow indices) is the share measured
here. Candidates run with ``--guess`` as that share.

    python tools/tune_wide.py --candidates "18,1.5,300 18,1,150 18,0.5,74.4" \\
        --write "8=18,1.5,300 9=18,1,150 10=18,0.5,74.4"
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

import bitstream
from gqcodec import zoo
from gqcodec.codec import Codec
from gqcodec.train import DEFAULT_DATA, list_images, load_pack

PROBE = 255  # a scratch quality number for the candidates (never written to the registry)


def parse_setting(text: str) -> tuple[int, float, float]:
    kb, gamma, lam = text.split(",")
    return int(kb), float(gamma), float(lam)


def measure(codec: Codec, images, n: int, kb: int, gamma: float, lam: float, guess: float) -> dict:
    """Real files of ``images`` at ``n`` blocks with codebook 2**kb, RDOQ ``gamma``, adaptive ``lam``."""
    codec.ladder[PROBE] = n
    codec.wide_bits[PROBE] = kb
    codec.escape_guess[PROBE] = guess
    codec.entry = dict(codec.entry, rdoq_by_quality=dict(codec.entry.get("rdoq_by_quality", {}), **{str(PROBE): gamma}),
                       adaptive_lambda=dict(codec.entry.get("adaptive_lambda", {}), **{str(PROBE): lam}))
    bits = se = px = 0.0
    narrow = coded = 0
    t = time.time()
    for rgb in images:
        data = codec.compress(rgb, quality=PROBE)
        out = np.asarray(codec.decompress(data)).astype(np.float64)
        bits += 8 * len(data)
        se += float(((out - rgb) ** 2).sum())
        px += rgb.shape[0] * rgb.shape[1]
        _, idx = bitstream.unpack(data, codec.prior)
        kept = idx[idx >= 0]
        narrow += int((kept < codec.prior.K).sum())
        coded += kept.size
    return {"bpp": round(bits / px, 4), "psnr": round(10 * math.log10(255**2 / (se / px / 3)), 3),
            "narrow_share": round(narrow / max(coded, 1), 3), "seconds": round(time.time() - t, 1)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--first", type=int, default=-24, help="first training-pack image (negative: from the end)")
    ap.add_argument("--count", type=int, default=16)
    ap.add_argument("--candidates", default="18,1.5,300 18,1.5,150 18,1,150 18,0.5,150 18,0.5,74.4",
                    help="space-separated K_bits,rdoq,lambda settings to measure")
    ap.add_argument("--guess", type=float, default=0.5, help="narrow-index share the candidates' RDOQ assumes")
    ap.add_argument("--write", default="", help="space-separated QUALITY=K_bits,rdoq,lambda to store in the registry")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    codec = Codec(a.model)
    if codec.prior is None:
        raise SystemExit(f"model {codec.name} has no index prior: wide codebooks need range coding with one")
    files = list_images(a.data)
    first = a.first % len(files)
    images = [im.permute(1, 2, 0).numpy() for im in load_pack(files[first:first + a.count], 16)]
    n = codec.model.config.blocks
    narrow_top = max(q for q in codec.qualities if codec.index_bits(q) == codec.model.config.K_bits)
    chosen = dict(item.split("=") for item in a.write.split())
    runs = {}
    ref = (codec.model.config.K_bits, codec.rdoq_for(narrow_top), codec.adaptive_lambda(narrow_top) or 0.0)
    for text in [",".join(f"{v:g}" for v in ref)] + a.candidates.split() + list(chosen.values()):
        if text in runs:
            continue
        kb, gamma, lam = parse_setting(text)
        runs[text] = measure(codec, images, n, kb, gamma, lam, a.guess)
        print(f"K=2^{kb} rdoq {gamma:g} lambda {lam:g}" + (f" (quality {narrow_top}, narrow)" if not runs.keys() - {text} else "")
              + ": " + json.dumps(runs[text]), flush=True)
    if not chosen:
        return
    reg = zoo.read_registry()
    e = reg["models"][codec.name]
    for q, text in chosen.items():
        kb, gamma, lam = parse_setting(text)
        e["ladder"][q] = n
        e.setdefault("index_bits", {})[q] = kb
        e.setdefault("rdoq_by_quality", {})[q] = gamma
        e.setdefault("adaptive_lambda", {})[q] = lam
        e.setdefault("escape_share", {})[q] = min(0.99, max(0.01, runs[text]["narrow_share"]))
    e["wide_selection"] = {"images": f"training pack [{first}:{first + a.count}]", "guess": a.guess, "runs": runs,
                           "chosen": chosen}
    zoo.save_registry(reg)
    print(f"registry: qualities {', '.join(chosen)} of {codec.name} updated")


if __name__ == "__main__":
    main()
