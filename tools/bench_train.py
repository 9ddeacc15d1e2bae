#!/usr/bin/env python
"""Training step speed, float32 against bf16 mixed precision (``gqcodec train --precision``).

    python tools/bench_train.py [--threads 2] [--batch 8] [--crop 128] [--repeats 5]

One full training step of the shipped default model (``gqcodec.train.vae_loss`` with every
block kept, backward, gradient clipping, Adam) on crops of the training pack (random pixels if the
pack is not there), each precision timed on the same batches, interleaved repeat by repeat.
Also the agreement of the bf16 gradient with the float32 one on one batch, next to the
agreement of two float32 gradients that differ only in the posterior sample (the noise SGD
already lives with), so that a precision's speed comes with what it costs in accuracy.
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
import torch.nn.functional as F

from gqcodec import zoo
from gqcodec.model import GQVAE
from gqcodec.quantizer import TDC
from gqcodec.train import DEFAULT_DATA, list_images, load_pack, load_tdc, random_batch, read_init, TrainConfig, use_precision, vae_loss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", default=None, help="shipped model (default: the default model)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    name = a.model or zoo.default_name()
    init = read_init(str(zoo.weights_path(name)))
    state, config = init["model"], init["config"]
    files = list_images(DEFAULT_DATA) if DEFAULT_DATA.exists() else []
    imgs = load_pack(files[:64], a.crop) if files else None
    gen = random.Random(0)

    def batch():
        if imgs:
            return random_batch(imgs, a.batch, a.crop, gen)
        return torch.rand(a.batch, 3, a.crop, a.crop)

    runs = {}
    for prec in ("fp32", "bf16"):
        model = GQVAE(config)
        model.load_state_dict(state)
        model.train()
        bf16 = use_precision(model, prec)
        tdc = TDC(config.K_bits, groups=config.blocks)
        load_tdc(tdc, init["tdc"])
        opt = torch.optim.Adam(model.parameters(), lr=1e-6)
        runs[prec] = (model, tdc, opt, bf16)

    def step(prec, x, seed=0, update=True):
        model, tdc, opt, bf16 = runs[prec]
        torch.manual_seed(seed)
        keep = torch.full((x.shape[0],), config.blocks)
        loss = vae_loss(model, tdc, x, keep, TrainConfig.lmbda, bf16)[0]  # gqcodec train's default --lmbda
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        if update:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        return grad

    x0 = batch()
    g32 = step("fp32", x0, update=False)
    g16 = step("bf16", x0, update=False)
    g32b = step("fp32", x0, seed=1, update=False)
    times = {p: [] for p in runs}
    for _ in range(a.repeats + 1):  # the first round warms up (oneDNN picks its kernels)
        x = batch()
        for p in runs:
            t = time.perf_counter()
            step(p, x)
            times[p].append(time.perf_counter() - t)
    print(f"model {name}, batch {a.batch} x {a.crop}², {a.threads} threads, {a.repeats} repeats "
          f"(CPU capability {torch.backends.cpu.get_cpu_capability()})\n")
    print("| precision | s/step min | s/step median | speed-up (median) |")
    print("|---|---|---|---|")
    base = statistics.median(times["fp32"][1:])
    for p, t in times.items():
        med = statistics.median(t[1:])
        print(f"| {p} | {min(t[1:]):.3f} | {med:.3f} | {base / med:.2f}x |")
    cos = F.cosine_similarity(g16, g32, 0).item()
    noise = F.cosine_similarity(g32b, g32, 0).item()
    print(f"\ngradient cosine on one batch: bf16 vs fp32 {cos:.3f}; fp32 with another posterior sample "
          f"vs fp32 {noise:.3f}; norm ratio bf16/fp32 {(g16.norm() / g32.norm()).item():.3f}")


if __name__ == "__main__":
    main()
