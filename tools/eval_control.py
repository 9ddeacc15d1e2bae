"""Evaluate scalar-quantized control checkpoints (tools/train_control.py) on Kodak.

Every image goes through compressai's real entropy coder (``model.compress`` then
``model.decompress`` from the strings alone); the rate counts the coded strings plus
an 8-byte stand-in for a container header (latent and image sizes), so it compares
with .gqc files, whose 96-byte header adds 0.002 bpp on a Kodak image.

    python tools/eval_control.py /work/runs/fp-l0067/ckpt.pt /work/runs/fp-l025/ckpt.pt \
        --out docs/results/kodak/control-factorized-n128-m320.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gqcodec import rd
from gqcodec.metrics import ms_ssim_rgb, psnr_rgb

HEADER_BYTES = 8
KODAK = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "kodak"


@torch.inference_mode()
def evaluate(ckpt_path: str, images: list[Path]) -> dict:
    from compressai.models import FactorizedPrior

    ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    a = ck["args"]
    model = FactorizedPrior(a["N"], a["M"])
    model.load_state_dict(ck["model"])
    model.eval()
    model.update(force=True)
    rows = {"bpp": [], "psnr-rgb": [], "ms-ssim-rgb": [], "encoding_time": [], "decoding_time": []}
    for p in images:
        rgb = np.asarray(Image.open(p).convert("RGB"))
        h, w = rgb.shape[:2]
        x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float().div(255)
        ph, pw = (-h) % 16, (-w) % 16
        xp = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate")
        t0 = time.perf_counter()
        enc = model.compress(xp)
        t1 = time.perf_counter()
        out = model.decompress(enc["strings"], enc["shape"])["x_hat"][..., :h, :w]
        t2 = time.perf_counter()
        nbytes = sum(len(s) for group in enc["strings"] for s in group) + HEADER_BYTES
        dec = out.clamp(0, 1).mul(255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
        rows["bpp"].append(nbytes * 8 / (h * w))
        rows["psnr-rgb"].append(psnr_rgb(rgb, dec))
        rows["ms-ssim-rgb"].append(ms_ssim_rgb(rgb, dec))
        rows["encoding_time"].append(t1 - t0)
        rows["decoding_time"].append(t2 - t1)
    point = {k: float(np.mean(v)) for k, v in rows.items()}
    point.update(lmbda=a["lmbda"], steps=int(ck["step"]), params=int(ck.get("params", 0)),
                 schedule=a.get("schedule", "?"))
    return point


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--kodak", default=str(KODAK))
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    images = sorted(Path(a.kodak).glob("*.png"))
    if not images:
        raise SystemExit(f"no PNG images in {a.kodak}")
    points = sorted((evaluate(c, images) for c in a.checkpoints), key=lambda r: r["bpp"])
    for pt in points:
        print(json.dumps(pt))
    steps = sorted({pt["steps"] for pt in points})
    schedules = sorted({pt["schedule"] for pt in points})
    res = {k: [pt[k] for pt in points] for k in ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time")}
    res["lmbda"] = [pt["lmbda"] for pt in points]
    data = rd.make_results(
        "control: factorized prior (scalar quantization), N=128 M=320",
        f"compressai FactorizedPrior with GQ's transforms and data, {steps} steps of 8 crops of 128^2, "
        f"lr schedule {schedules} (the shipped GQ model: 13,500 steps, '0:2e-4,6750:6e-5'); Kodak, "
        f"real compressai bitstreams + {HEADER_BYTES}-byte header",
        res)
    rd.save(data, a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
