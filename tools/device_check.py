"""Checks a lent accelerator before training on it (tools/device_train.sh runs this first).

Prints one JSON object: torch and device facts; whether the GQ search on the device picks the same
indices as on the CPU (random posteriors with and without an RDOQ bias, and real posteriors of the
default model on a training crop); and the seconds per training step (forward, backward, Adam) of
the default model at the given batch and crop. ``search_matches`` false tells the training script
to turn validation (which runs the search on the device) off. On a machine without the device the
comparison is skipped and ``device_available`` is false.

    python tools/device_check.py --device cuda --batch 16 --crop 256 --data .trainpack
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gqcodec import zoo  # noqa: E402
from gqcodec.train import list_images, load_pack  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def search_check(device: torch.device, model, image: torch.Tensor | None, rows: int, seed: int = 0) -> dict:
    """Indices of the model's search on the device against the same search on the CPU, on the same inputs."""
    g = torch.Generator().manual_seed(seed)
    q = model.quantizer  # on the CPU
    mu = torch.randn(rows, q.dim, generator=g) * 0.6
    lv = torch.randn(rows, q.dim, generator=g) * 0.5 - 1.5
    bias = torch.log(torch.rand(q.codebook_size, generator=g, dtype=torch.float64) + 1e-3) * 2.5
    cases = {"random": (mu, lv, None), "random_rdoq": (mu, lv, bias)}
    if image is not None:
        with torch.inference_mode():
            pm, plv = model.posterior(image[None].float().div(255))
        B = model.config.blocks
        cases["posterior"] = (model.to_rows(pm, B), model.to_rows(plv, B), None)
    qd = copy.deepcopy(q).to(device)
    out = {}
    for name, (m, v, b) in cases.items():
        ref = q.quantize(m, v, bias=b)
        sync(device)
        t = time.time()
        got = qd.quantize(m.to(device), v.to(device), bias=None if b is None else b.to(device)).cpu()
        sync(device)
        out[name] = {"rows": int(m.shape[0]), "equal": int((got == ref).sum()), "seconds": round(time.time() - t, 4)}
    return out


def step_time(device: torch.device, model, batch: int, crop: int, steps: int) -> float:
    model = model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-6)
    x = torch.rand(batch, 3, crop, crop, device=device)
    keep = torch.full((batch,), model.config.blocks, device=device)
    times = []
    for _ in range(steps + 2):
        sync(device)
        t = time.time()
        out = model(x, keep)
        loss = torch.nn.functional.mse_loss(out["x_hat"], x) + out["kl"].mean() * 1e-4
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync(device)
        times.append(time.time() - t)
    return round(sorted(times[2:])[len(times[2:]) // 2], 4)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--model", default=None, help="registry model (default: the default model)")
    ap.add_argument("--data", default="", help="a training-image folder for the real-posterior check")
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args(argv)
    device = torch.device(a.device)
    facts = {"torch": torch.__version__, "device": a.device,
             "device_available": device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_available())}
    if device.type == "cuda" and facts["device_available"]:
        facts["name"] = torch.cuda.get_device_name(0)
        facts["matmul_precision"] = torch.get_float32_matmul_precision()
    if not facts["device_available"]:
        print(json.dumps(facts))
        return 1
    model = zoo.load_model(a.model).eval()
    image = None
    if a.data:
        files = list_images(a.data)
        image = load_pack(files[-1:], 16)[0][:, :256, :256]
    if device.type != "cpu":
        res = search_check(device, model, image, a.rows)
        facts["search"] = res
        facts["search_matches"] = all(r["equal"] == r["rows"] for r in res.values())
    else:
        facts["search_matches"] = True  # the CPU search is the reference
    facts["seconds_per_step"] = step_time(device, model, a.batch, a.crop, a.steps)
    facts["batch"], facts["crop"] = a.batch, a.crop
    print(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
